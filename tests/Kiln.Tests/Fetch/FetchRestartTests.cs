using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Fetch;

/// <summary>A download survives the server being killed (SIGKILL) mid-transfer: the restarted server resumes it once.</summary>
public sealed class FetchRestartTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;
    private Origin _origin = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-fetch-restart-").FullName;
        _origin = await Origin.StartAsync(await File.ReadAllBytesAsync(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")));
    }

    public async ValueTask DisposeAsync()
    {
        await _origin.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task Killed_mid_download_the_restarted_server_resumes_with_range_and_completes_once()
    {
        var created = await KilnProcess.RunAsync(Environment(), "keys", "create", "--name", "restart", "--role", "admin");
        Assert.True(created.ExitCode == 0, created.Stderr);
        var key = created.Stdout.Trim();

        var (first, address) = await ServeAsync();
        Guid jobId, assetId;
        await using (first)
        {
            using var client = Client(address, key);
            using var response = await client.PostAsJsonAsync("/api/downloads", new JsonObject { ["url"] = _origin.Url("/slow.jpg").AbsoluteUri, ["mode"] = "direct" });
            var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
            (jobId, assetId) = (body["jobId"]!.GetValue<Guid>(), body["assetId"]!.GetValue<Guid>());
            await Poll.UntilAsync(
                async () => (await client.GetFromJsonAsync<JsonObject>($"/api/jobs/{jobId}"))!,
                job => job["progress"]!.GetValue<double>() > 0,
                "the download to report progress",
                90);
        }

        // Disposing kills the process tree with SIGKILL: no shutdown, the lease is left to expire.
        _origin.Release.TrySetResult();
        var (second, address2) = await ServeAsync();
        await using (second)
        {
            using var client = Client(address2, key);
            var job = await Poll.UntilAsync(
                async () => (await client.GetFromJsonAsync<JsonObject>($"/api/jobs/{jobId}"))!,
                j => j["state"]!.GetValue<string>() is "completed" or "failed",
                "the download to finish",
                120);

            Assert.Equal("completed", job["state"]!.GetValue<string>());
            var jobs = (await client.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}"))!["jobs"]!.AsArray();
            Assert.Single(jobs, j => j!["kind"]!.GetValue<string>() == "probe");
        }

        var ranged = Assert.Single(_origin.Requests, r => r.Path == "/slow.jpg" && r.Range is not null);
        Assert.NotEqual("bytes=0-", ranged.Range);
        Assert.Equal(2, _origin.Hits("/slow.jpg"));
        var stored = await File.ReadAllBytesAsync(Path.Combine(_data, "originals", assetId.ToString("N"), "original"));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(_origin.File)), Convert.ToHexStringLower(SHA256.HashData(stored)));
    }

    // KilnProcess.ServeAsync waits 30 s; a start-up on a machine at load 80 can take longer.
    private async Task<(KilnProcess Process, Uri Address)> ServeAsync()
    {
        var process = KilnProcess.Start(Environment(), "serve", "--urls", "http://127.0.0.1:0");
        var line = await process.WaitForOutputAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(180));
        return (process, new Uri(System.Text.RegularExpressions.Regex.Match(line, @"http://127\.0\.0\.1:\d+").Value));
    }

    private static HttpClient Client(Uri address, string key)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    private Dictionary<string, string> Environment() => new()
    {
        ["ConnectionStrings__Kiln"] = _database.ConnectionString,
        ["Kiln__DataDirectory"] = _data,
        ["Kiln__Fetch__AllowPrivateNetworks"] = "true",
        ["Kiln__Queue__LeaseSeconds"] = "3",
        ["Kiln__Queue__MaintenanceIntervalSeconds"] = "0.2",
        ["Kiln__Queue__BackoffBaseSeconds"] = "0.2",
        ["Kiln__Security__CreateAdminKeyOnFirstStart"] = "false",
    };
}
