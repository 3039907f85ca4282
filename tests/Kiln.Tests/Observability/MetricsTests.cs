using System.Globalization;
using System.Text.RegularExpressions;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Observability;

/// <summary>One parsed sample of the Prometheus text format.</summary>
internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>A strict reader of the Prometheus text exposition format (0.0.4), enough to prove /metrics is well formed.</summary>
internal static partial class Exposition
{
    public static (List<Sample> Samples, Dictionary<string, string> Types) Parse(string text)
    {
        var samples = new List<Sample>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var helps = new HashSet<string>(StringComparer.Ordinal);
        var finished = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var name = line.Split(' ')[2];
                Assert.True(helps.Add(name), $"HELP for {name} appears twice");
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Equal(4, parts.Length);
                Assert.True(parts[3] is "counter" or "gauge" or "histogram" or "summary" or "untyped", line);
                Assert.True(types.TryAdd(parts[2], parts[3]), $"TYPE for {parts[2]} appears twice");
                Assert.Contains(parts[2], helps);
                continue;
            }

            Assert.False(line.StartsWith('#'), "unexpected comment: " + line);
            var match = SampleLine().Match(line);
            Assert.True(match.Success, "not a sample line: " + line);
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
            {
                Assert.True(labels.TryAdd(label.Groups[1].Value, label.Groups[2].Value), "duplicate label in " + line);
            }

            var sampleName = match.Groups["name"].Value;
            var family = FamilyOf(sampleName, types);
            Assert.True(types.ContainsKey(family), $"{sampleName} has no TYPE line before it");
            if (family != current)
            {
                // A family's samples are contiguous.
                Assert.True(current is null || finished.Add(current), "family interleaved: " + current);
                Assert.DoesNotContain(family, finished);
                current = family;
            }

            var raw = match.Groups["value"].Value;
            var value = raw switch { "+Inf" => double.PositiveInfinity, "-Inf" => double.NegativeInfinity, "NaN" => double.NaN, _ => double.Parse(raw, CultureInfo.InvariantCulture) };
            samples.Add(new Sample(sampleName, labels, value));
        }

        return (samples, types);
    }

    private static string FamilyOf(string sample, Dictionary<string, string> types)
    {
        foreach (var suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (sample.EndsWith(suffix, StringComparison.Ordinal) && types.TryGetValue(sample[..^suffix.Length], out var type) && type is "histogram" or "summary")
            {
                return sample[..^suffix.Length];
            }
        }

        return sample;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?<labels>\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})? (?<value>[-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf)|NaN)$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex(""""([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"""")]
    private static partial Regex LabelPair();
}

public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_can_be_restricted_to_admin_keys()
    {
        await using var server = await TestJobs.StartServerAsync(new Dictionary<string, string?> { ["Kiln:Security:MetricsRequireAdminKey"] = "true" });
        using var anonymous = server.CreateClient();

        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/metrics")).StatusCode);
        using var scraped = await server.Admin.GetAsync("/metrics");
        Assert.Equal(System.Net.HttpStatusCode.OK, scraped.StatusCode);
        Assert.Contains("kiln_jobs", await scraped.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_are_valid_prometheus_text_with_jobs_durations_waits_and_http_requests()
    {
        await using var server = await TestJobs.StartServerAsync();
        var (_, jobs) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output, TestJobs.Fail]);
        await server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
        await server.WaitForJobAsync(jobs[TestJobs.Fail], ["failed"]);
        await server.Admin.GetAsync($"/api/jobs/{jobs["probe"]}");

        using var anonymous = server.CreateClient();
        using var response = await anonymous.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("0.0.4", response.Content.Headers.ContentType.Parameters.Single(p => p.Name == "version").Value);
        var (samples, types) = Exposition.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal("gauge", types["kiln_jobs"]);
        Assert.Equal(1, Value(samples, "kiln_jobs", ("queue", "test"), ("state", "completed")));
        Assert.Equal(1, Value(samples, "kiln_jobs", ("queue", "test"), ("state", "failed")));
        Assert.Equal(0, Value(samples, "kiln_jobs", ("queue", "test"), ("state", "running")));
        Assert.Equal(1, Value(samples, "kiln_jobs", ("queue", "default"), ("state", "completed")));

        Assert.Equal("histogram", types["kiln_job_duration_seconds"]);
        Assert.Equal(1, Value(samples, "kiln_job_duration_seconds_count", ("queue", "test"), ("kind", "test.output"), ("outcome", "completed")));
        Assert.Equal(1, Value(samples, "kiln_job_duration_seconds_count", ("queue", "test"), ("kind", "test.fail"), ("outcome", "failed")));
        Assert.Equal("histogram", types["kiln_job_queue_wait_seconds"]);
        Assert.Equal(1, Value(samples, "kiln_job_queue_wait_seconds_count", ("queue", "test"), ("kind", "test.output")));
        Assert.Equal("counter", types["kiln_jobs_finished_total"]);

        Assert.Equal("counter", types["kiln_http_requests_total"]);
        Assert.True(Value(samples, "kiln_http_requests_total", ("method", "GET"), ("route", "/api/jobs/{id:guid}"), ("status", "200")) >= 1);
        Assert.Equal(1, Value(samples, "kiln_http_requests_total", ("method", "POST"), ("route", "/api/uploads"), ("status", "202")));
        Assert.Equal("histogram", types["kiln_http_request_duration_seconds"]);

        // Failures by error code, what the dashboard and alerts read, and the process and runtime metrics.
        Assert.Equal(1, Value(samples, "kiln_job_failures_total", ("queue", "test"), ("kind", "test.fail"), ("code", "test_failure")));
        Assert.True(Value(samples, "kiln_data_disk_free_bytes") > 0);
        Assert.True(Value(samples, "kiln_data_disk_size_bytes") >= Value(samples, "kiln_data_disk_free_bytes"));
        Assert.Equal(0, Value(samples, "kiln_remote_workers_connected"));
        Assert.Equal(0, Value(samples, "kiln_hub_connections"));
        Assert.True(Value(samples, "process_cpu_seconds_total") > 0);
        Assert.True(Value(samples, "process_resident_memory_bytes") > 0);
        Assert.True(Value(samples, "dotnet_total_memory_bytes") > 0);
        Assert.Contains(samples, s => s.Name == "dotnet_collection_count_total");

        // Histogram buckets are cumulative and end in +Inf equal to the count.
        foreach (var series in samples.Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal))
            .GroupBy(s => s.Name + string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key)), StringComparer.Ordinal))
        {
            var counts = series.Select(s => s.Value).ToList();
            Assert.Equal(counts.Order(), counts);
            Assert.Equal("+Inf", series.Last().Labels["le"]);
            var first = series.First();
            var count = samples.Single(s => s.Name == first.Name[..^"_bucket".Length] + "_count"
                && s.Labels.Count == first.Labels.Count - 1 && s.Labels.All(l => first.Labels[l.Key] == l.Value));
            Assert.Equal(count.Value, counts[^1]);
        }
    }

    private static double Value(List<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        samples.Single(s => s.Name == name && s.Labels.Count == labels.Length && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Value;
}
