using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Observability;

/// <summary>The built server as a process: its console is JSON lines, and a job's log lines carry the job's id.</summary>
public sealed class JsonLogTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-logs-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Every_console_line_is_json_and_a_failing_jobs_warning_carries_its_job_id_scope()
    {
        var (server, address) = await KilnProcess.ServeAsync(new Dictionary<string, string>
        {
            ["ConnectionStrings__Kiln"] = _database.ConnectionString,
            ["Kiln__DataDirectory"] = _data,
            ["Kiln__Queue__BackoffBaseSeconds"] = "60",
        });
        await using (server)
        {
            // The first start prints the admin key once, outside the JSON log stream: a banner on stderr and a 0600 file.
            var keyLine = await server.WaitForErrorAsync(l => l.TrimStart().StartsWith("kiln_", StringComparison.Ordinal));
            var keyFile = Path.Combine(_data, "keys", "admin-key.txt");
            Assert.Equal(keyLine.Trim(), File.ReadAllText(keyFile).Trim());
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            }
            using var admin = new HttpClient { BaseAddress = address };
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", keyLine.Trim());

            // Make the probe fail: hold its queue, remove the stored original, let it run.
            Assert.True((await admin.PostAsync("/api/queues/default/pause", null)).IsSuccessStatusCode);
            using var form = new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "file", "doomed.bin" } };
            var upload = (await (await admin.PostAsync("/api/uploads", form)).Content.ReadFromJsonAsync<JsonObject>())!;
            var assetId = upload["assets"]![0]!["id"]!.GetValue<Guid>();
            var probeId = upload["assets"]![0]!["jobs"]![0]!["id"]!.GetValue<Guid>();
            File.Delete(Path.Combine(_data, "originals", assetId.ToString("N"), "original"));
            Assert.True((await admin.PostAsync("/api/queues/default/resume", null)).IsSuccessStatusCode);

            var warning = await server.WaitForOutputAsync(l => l.Contains("\"Kiln.Processing.InProcessWorkers\"", StringComparison.Ordinal)
                && l.Contains(probeId.ToString(), StringComparison.Ordinal) && l.Contains("failed", StringComparison.Ordinal));
            var entry = JsonNode.Parse(warning)!.AsObject();
            Assert.Equal("Warning", entry["LogLevel"]!.GetValue<string>());
            Assert.True(DateTimeOffset.TryParse(entry["Timestamp"]!.GetValue<string>(), out _));
            Assert.Equal("io_error", entry["State"]!["Code"]!.GetValue<string>());
            var scope = Assert.Single(entry["Scopes"]!.AsArray(), s => s is JsonObject o && o.ContainsKey("jobId"))!;
            Assert.Equal(probeId, scope["jobId"]!.GetValue<Guid>());
            Assert.Equal("probe", scope["kind"]!.GetValue<string>());

            var lines = server.StandardOutput.Where(l => l.StartsWith('{')).ToList();
            Assert.True(lines.Count >= 5, "the server logged its start");
            foreach (var line in lines)
            {
                using var parsed = JsonDocument.Parse(line);
                Assert.True(parsed.RootElement.TryGetProperty("Category", out _), line);
            }

            Assert.All(server.StandardOutput.Where(l => l.Length > 0), l => Assert.True(l.StartsWith('{'), "not JSON: " + l));
            Assert.DoesNotContain(server.StandardOutput, l => l.Contains(keyLine.Trim(), StringComparison.Ordinal));
        }
    }
}
