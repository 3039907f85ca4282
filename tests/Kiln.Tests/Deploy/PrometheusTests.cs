using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Deploy;

/// <summary>
/// A real Prometheus (Debian's) scrapes a real Kiln that ran jobs of every outcome, and every query of the Grafana
/// dashboard and every alert rule's query returns data: a renamed metric or label in Kiln breaks this test, not a
/// production dashboard.
/// </summary>
public sealed partial class PrometheusTests
{
    [Fact]
    public async Task Every_dashboard_and_alert_query_returns_data_from_a_real_scrape()
    {
        await using var server = await TestJobs.StartServerAsync();

        // Jobs of every outcome: an image optimized (bytes saved), derivatives written, a failure, a stall.
        var photo = await File.ReadAllBytesAsync(TestPaths.CorpusFile("Landscape_1.jpg"));
        var (_, jobs) = await TestJobs.UploadAsync(server, server.Admin, ["image.optimize", TestJobs.Output, TestJobs.Fail, TestJobs.Gate], "photo.jpg", photo);
        await server.WaitForJobAsync(jobs["image.optimize"], ["completed"], TimeSpan.FromSeconds(120));
        await server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
        await server.WaitForJobAsync(jobs[TestJobs.Fail], ["failed"]);

        // The stalled-jobs alert needs a stall: the held job's last progress is moved an hour back, as if its handler
        // had hung that long (a stall timeout of a second would also stall the slow jobs on a loaded machine).
        var gate = jobs[TestJobs.Gate];
        await Poll.UntilAsync(async () => (await server.Admin.GetJsonAsync($"/api/jobs/{gate}"))["state"]!.GetValue<string>() == "running", "the held job runs");
        await using (var cmd = server.Get<Npgsql.NpgsqlDataSource>().CreateCommand("update jobs set last_progress_at = now() - interval '1 hour' where id = @id and state = 'running'"))
        {
            cmd.Parameters.AddWithValue("id", gate);
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }

        // Retried at once and leased again (which clears its error code): its second attempt shows the stall.
        await Poll.UntilAsync(async () =>
        {
            var job = await server.Admin.GetJsonAsync($"/api/jobs/{gate}");
            return job["attempts"]!.GetValue<int>() >= 2 || job["errorCode"]?.GetValue<string>() == "stalled";
        }, "the held job stalled");

        var dir = Directory.CreateTempSubdirectory("kiln-prometheus-").FullName;
        Process? prometheus = null;
        try
        {
            File.Copy(Tool.Deploy("prometheus", "alerts.yml"), Path.Combine(dir, "alerts.yml"));
            // The shipped config with this test's target and a fast scrape; job name and rule file as shipped.
            var config = (await File.ReadAllTextAsync(Tool.Deploy("prometheus", "prometheus.yml")))
                .Replace("scrape_interval: 15s", "scrape_interval: 1s", StringComparison.Ordinal)
                .Replace("evaluation_interval: 15s", "evaluation_interval: 1s", StringComparison.Ordinal)
                .Replace("\"kiln:8080\"", $"\"{server.BaseAddress.Authority}\"", StringComparison.Ordinal);
            Assert.Contains(server.BaseAddress.Authority, config, StringComparison.Ordinal);
            await File.WriteAllTextAsync(Path.Combine(dir, "prometheus.yml"), config);

            var port = FreePort();
            var psi = new ProcessStartInfo("prometheus") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in new[]
            {
                "--config.file=" + Path.Combine(dir, "prometheus.yml"), "--storage.tsdb.path=" + Path.Combine(dir, "data"),
                $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
            })
            {
                psi.ArgumentList.Add(arg);
            }

            prometheus = Process.Start(psi)!;
            var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
            prometheus.ErrorDataReceived += (_, e) => log.Enqueue(e.Data ?? "");
            prometheus.OutputDataReceived += (_, e) => log.Enqueue(e.Data ?? "");
            prometheus.BeginErrorReadLine();
            prometheus.BeginOutputReadLine();
            using var api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await Poll.UntilAsync(async () =>
            {
                Assert.False(prometheus.HasExited, "prometheus exited: " + string.Join('\n', log));
                try
                {
                    using var ready = await api.GetAsync("/-/ready");
                    return ready.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, "Prometheus is ready");

            // Requests and jobs while Prometheus scrapes, so rates and percentiles over the last minute are not empty.
            using var traffic = new CancellationTokenSource();
            var load = Task.Run(async () =>
            {
                while (!traffic.IsCancellationRequested)
                {
                    await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output]);
                    using var listed = await server.Admin.GetAsync("/api/jobs", CancellationToken.None);
                    // The pace of the generated traffic, not a wait for something.
                    await Task.Delay(500, CancellationToken.None);
                }
            });

            var queries = DashboardQueries().Concat(await AlertQueriesAsync()).ToList();
            Assert.True(queries.Count >= 25, $"only {queries.Count} queries found");
            var empty = new List<string>();
            foreach (var query in queries)
            {
                if (!await ReturnsDataAsync(api, query))
                {
                    empty.Add(query);
                }
            }

            await traffic.CancelAsync();
            await load;
            Assert.True(empty.Count == 0, "no data for:\n" + string.Join('\n', empty));

            // The rules load and evaluate without errors.
            var rules = JsonNode.Parse(await api.GetStringAsync("/api/v1/rules"))!["data"]!["groups"]!.AsArray().SelectMany(g => g!["rules"]!.AsArray()).ToList();
            Assert.Equal(6, rules.Count);
            Assert.All(rules, r => Assert.Equal("ok", r!["health"]!.GetValue<string>()));
        }
        finally
        {
            if (prometheus is { HasExited: false })
            {
                prometheus.Kill(entireProcessTree: true);
                await prometheus.WaitForExitAsync();
            }

            prometheus?.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Every target expression of the dashboard, with Grafana's interval variables filled in.</summary>
    private static IEnumerable<string> DashboardQueries()
    {
        var dashboard = JsonNode.Parse(File.ReadAllText(Tool.Deploy("grafana", "dashboards", "kiln.json")))!;
        return dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => t!["expr"]!.GetValue<string>()
            .Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("$__range", "5m", StringComparison.Ordinal));
    }

    /// <summary>Each alert's query without its threshold (alerts.yml keeps them "query op number").</summary>
    private static async Task<IEnumerable<string>> AlertQueriesAsync()
    {
        var text = await File.ReadAllTextAsync(Tool.Deploy("prometheus", "alerts.yml"));
        var exprs = Expr().Matches(text).Select(m => m.Groups[1].Value.Trim()).ToList();
        Assert.Equal(6, exprs.Count);
        return exprs.Select(e =>
        {
            var threshold = Threshold().Match(e);
            Assert.True(threshold.Success, "alert expression is not '<query> <op> <number>': " + e);
            return e[..threshold.Index];
        });
    }

    /// <summary>Polls the query (the first scrapes and rate windows take a few seconds) until it returns a series.</summary>
    /// <remarks>False after the poll's timeout, so the test can name every empty query at once.</remarks>
    private static async Task<bool> ReturnsDataAsync(HttpClient api, string query)
    {
        try
        {
            await Poll.UntilAsync(
                async () =>
                {
                    using var response = await api.GetAsync("/api/v1/query?query=" + Uri.EscapeDataString(query));
                    var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                    Assert.True(body["status"]!.GetValue<string>() == "success", query + ": " + body.ToJsonString());
                    return body["data"]!["result"]!.AsArray().Any(r => r!["value"]![1]!.GetValue<string>() is not ("NaN" or "+Inf" or "-Inf"));
                },
                "a series from " + query);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [GeneratedRegex(@"(?m)^\s+expr:\s*(.+)$")]
    private static partial Regex Expr();

    [GeneratedRegex(@"\s(==|!=|>=|<=|>|<)\s*[0-9.]+\s*$")]
    private static partial Regex Threshold();
}
