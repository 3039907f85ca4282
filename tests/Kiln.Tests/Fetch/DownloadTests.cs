using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Fetch;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Tests.Fetch;

/// <summary>
/// The direct downloader (mode direct: auto's sniff would add a request) against a real origin on loopback. Loopback is a private address, so these tests turn
/// Kiln:Fetch:AllowPrivateNetworks on explicitly; <see cref="FetchGuardTests"/> runs with it off.
/// </summary>
public sealed class DownloadTests : IAsyncLifetime
{
    private Origin _origin = null!;
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _origin = await Origin.StartAsync(await File.ReadAllBytesAsync(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")));
        _server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Fetch:AllowPrivateNetworks"] = "true",
            ["Kiln:Fetch:MaxBytes"] = "5000000",
            ["Kiln:Fetch:IdleTimeoutSeconds"] = "4",
            ["Kiln:Queue:BackoffBaseSeconds"] = "0.2",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _origin.DisposeAsync();
    }

    [Fact]
    public async Task A_file_is_fetched_stored_as_a_url_asset_without_secrets_and_probed_like_an_upload()
    {
        var url = new UriBuilder(_origin.Url("/file.jpg")) { UserName = "alice", Password = "hunter2", Query = "token=s3cr3t&size=large" }.Uri;
        var (assetId, jobId) = await PostAsync(url.AbsoluteUri);

        var fetch = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(90));
        Assert.Equal("completed", fetch["state"]!.GetValue<string>());

        var details = (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}"))!;
        var asset = details["asset"]!;
        Assert.Equal("url", asset["source"]!.GetValue<string>());
        var sourceUrl = asset["sourceUrl"]!.GetValue<string>();
        Assert.DoesNotContain("hunter2", sourceUrl);
        Assert.DoesNotContain("alice", sourceUrl);
        Assert.DoesNotContain("s3cr3t", sourceUrl);
        Assert.Contains("size=large", sourceUrl);
        Assert.Equal("image", asset["kind"]!.GetValue<string>());
        Assert.Equal(_origin.File.Length, asset["size"]!.GetValue<long>());

        var probe = details["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "probe")!;
        var probed = await _server.WaitForJobAsync(probe["id"]!.GetValue<Guid>(), ["completed", "failed"], TimeSpan.FromSeconds(90));
        Assert.Equal(Sha(_origin.File), probed["result"]!["sha256"]!.GetValue<string>());

        var view = (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/downloads/{jobId}"))!;
        Assert.Equal(sourceUrl, view["sourceUrl"]!.GetValue<string>());
        Assert.DoesNotContain("s3cr3t", view.ToJsonString());
    }

    [Fact]
    public async Task An_origin_without_range_support_and_a_redirect_chain_both_deliver_the_file()
    {
        var (plainAsset, plain) = await PostAsync(_origin.Url("/norange.jpg").AbsoluteUri);
        var (redirectedAsset, redirected) = await PostAsync(_origin.Url("/redirect/3").AbsoluteUri);

        Assert.Equal("completed", (await _server.WaitForJobAsync(plain, ["completed", "failed"], TimeSpan.FromSeconds(90)))["state"]!.GetValue<string>());
        Assert.Equal("completed", (await _server.WaitForJobAsync(redirected, ["completed", "failed"], TimeSpan.FromSeconds(90)))["state"]!.GetValue<string>());
        Assert.Equal(Sha(_origin.File), await StoredShaAsync(plainAsset));
        Assert.Equal(Sha(_origin.File), await StoredShaAsync(redirectedAsset));
        Assert.Equal(3, _origin.Requests.Count(r => r.Path.StartsWith("/redirect/", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("/missing", "fetch.not_found")]
    [InlineData("/to-metadata", "fetch.forbidden_address")]
    [InlineData("/huge", "fetch.too_large")]
    [InlineData("/page", "fetch.not_media")]
    public async Task Permanent_failures_fail_at_once_with_their_code(string path, string code)
    {
        var (_, jobId) = await PostAsync(_origin.Url(path).AbsoluteUri);

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(90));
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal(code, job["errorCode"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_server_error_is_retried_with_backoff()
    {
        var (_, jobId) = await PostAsync(_origin.Url("/broken").AbsoluteUri);

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(120));
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("fetch.http_error", job["errorCode"]!.GetValue<string>());
        Assert.Equal(3, job["attempts"]!.GetValue<int>());
        Assert.Equal(3, _origin.Hits("/broken"));
    }

    [Fact]
    public async Task A_stream_that_stops_sending_is_a_stall_and_the_retry_resumes_from_the_bytes_it_has()
    {
        var (assetId, jobId) = await PostAsync(_origin.Url("/stall.jpg").AbsoluteUri);

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(120));
        Assert.Equal("completed", job["state"]!.GetValue<string>());
        Assert.Equal(2, job["attempts"]!.GetValue<int>());
        var ranged = Assert.Single(_origin.Requests, r => r.Path == "/stall.jpg" && r.Range is not null);
        Assert.Equal($"bytes={_origin.File.Length / 2}-", ranged.Range);
        Assert.Equal(Sha(_origin.File), await StoredShaAsync(assetId));
    }

    [Fact]
    public async Task Pause_mid_download_then_resume_asks_for_the_rest_with_range_and_the_file_is_whole()
    {
        var (assetId, jobId) = await PostAsync(_origin.Url("/slow.jpg").AbsoluteUri);
        await WaitForProgressAsync(jobId);

        (await _server.Admin.PostAsync($"/api/jobs/{jobId}/pause", null)).EnsureSuccessStatusCode();
        await _server.WaitForJobAsync(jobId, ["paused"]);
        _origin.Release.TrySetResult();
        (await _server.Admin.PostAsync($"/api/jobs/{jobId}/resume", null)).EnsureSuccessStatusCode();

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(90));
        Assert.Equal("completed", job["state"]!.GetValue<string>());
        var ranged = Assert.Single(_origin.Requests, r => r.Path == "/slow.jpg" && r.Range is not null);
        var from = long.Parse(ranged.Range!["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(from, 1, _origin.File.Length - 1);
        Assert.Equal(Sha(_origin.File), await StoredShaAsync(assetId));
        Assert.Equal(_origin.File.Length - from, job["result"]!["transferred"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_cancelled_downloads_directory_is_swept_while_a_paused_ones_is_kept()
    {
        var (_, paused) = await PostAsync(_origin.Url("/slow.jpg").AbsoluteUri);
        var (_, cancelled) = await PostAsync(_origin.Url("/slow.jpg?second").AbsoluteUri);
        foreach (var id in (Guid[])[paused, cancelled])
        {
            await WaitForProgressAsync(id);
        }

        (await _server.Admin.PostAsync($"/api/jobs/{paused}/pause", null)).EnsureSuccessStatusCode();
        (await _server.Admin.PostAsync($"/api/jobs/{cancelled}/cancel", null)).EnsureSuccessStatusCode();
        await _server.WaitForJobAsync(paused, ["paused"]);
        await _server.WaitForJobAsync(cancelled, ["cancelled"]);
        var pausedDir = Path.Combine(_server.DataDirectory, "tmp", "fetch", paused.ToString("N"));
        var cancelledDir = Path.Combine(_server.DataDirectory, "tmp", "fetch", cancelled.ToString("N"));
        Assert.True(Directory.Exists(cancelledDir), "the cancelled download left no directory to sweep");

        var removed = await _server.Services.GetRequiredService<FetchSweeper>().SweepAsync(TestContext.Current.CancellationToken);

        Assert.Equal(1, removed);
        Assert.False(Directory.Exists(cancelledDir));
        Assert.True(new FileInfo(Path.Combine(pausedDir, "download.part")).Length > 0);
    }

    private async Task<(Guid AssetId, Guid JobId)> PostAsync(string url)
    {
        using var response = await _server.Admin.PostAsJsonAsync("/api/downloads", new JsonObject { ["url"] = url, ["mode"] = "direct", ["settings"] = new JsonObject { ["jobs"] = new JsonArray() } });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(2, body.Count);
        return (body["assetId"]!.GetValue<Guid>(), body["jobId"]!.GetValue<Guid>());
    }

    private async Task<string> StoredShaAsync(Guid assetId) =>
        Sha(await File.ReadAllBytesAsync(Path.Combine(_server.DataDirectory, "originals", assetId.ToString("N"), "original")));

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private Task<JsonObject> WaitForProgressAsync(Guid jobId) =>
        Poll.UntilAsync(
            async () => (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/jobs/{jobId}"))!,
            job => job["progress"]!.GetValue<double>() > 0,
            $"download {jobId} to report progress",
            90);
}
