using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Fetch;

/// <summary>
/// yt-dlp and aria2c (Kiln:Fetch:Aria2Connections = 2) through the guarded proxy, against an HLS stream made with
/// ffmpeg at test time. Only 127.0.0.1 is allowed
/// (Kiln:Fetch:AllowedNetworks, not AllowPrivateNetworks); a second origin on 127.0.0.2 stays denied, so the
/// refusal test is a real one: the proxy must stop yt-dlp there.
/// </summary>
public sealed class YtDlpFetchTests : IAsyncLifetime
{
    private Origin _origin = null!;
    private Origin _denied = null!;
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _origin = await Origin.StartAsync(await File.ReadAllBytesAsync(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")));
        _denied = await Origin.StartAsync(Encoding.ASCII.GetBytes("never served"), "127.0.0.2");
        var segments = await MakeHlsAsync();
        foreach (var (name, bytes) in segments)
        {
            var type = name.EndsWith(".m3u8", StringComparison.Ordinal) ? "application/vnd.apple.mpegurl" : "video/mp2t";
            _origin.Files[name] = (bytes, type);
            _denied.Files[name] = (bytes, type);
        }

        // The same playlist, its segments on the denied origin.
        var playlist = Encoding.UTF8.GetString(segments["index.m3u8"]);
        var elsewhere = string.Join('\n', playlist.Split('\n').Select(l => l.EndsWith(".ts", StringComparison.Ordinal) ? _denied.Url("/files/" + l).AbsoluteUri : l));
        _origin.Files["elsewhere.m3u8"] = (Encoding.UTF8.GetBytes(elsewhere), "application/vnd.apple.mpegurl");

        _server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Fetch:AllowedNetworks:0"] = "127.0.0.1/32",
            ["Kiln:Fetch:Aria2Connections"] = "2",
            ["Kiln:Queue:BackoffBaseSeconds"] = "0.2",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _origin.DisposeAsync();
        await _denied.DisposeAsync();
    }

    [Fact]
    public async Task An_hls_stream_is_fetched_by_yt_dlp_through_the_proxy_and_probes_as_video_with_a_duration()
    {
        var (assetId, jobId) = await PostAsync(_origin.Url("/files/index.m3u8"), "ytdlp");

        var fetch = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(180));
        Assert.True("completed" == fetch["state"]!.GetValue<string>(), fetch.ToJsonString());
        Assert.Equal("ytdlp", fetch["result"]!["mode"]!.GetValue<string>());
        Assert.Equal("video", fetch["result"]!["kind"]!.GetValue<string>());
        Assert.True(fetch["result"]!["transferred"]!.GetValue<long>() > _origin.Files.Where(f => f.Key.StartsWith("index", StringComparison.Ordinal)).Sum(f => f.Value.Bytes.Length));
        Assert.Equal(4, _origin.Requests.Count(r => r.Path.EndsWith(".ts", StringComparison.Ordinal)));

        var details = (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}"))!;
        Assert.Equal("video", details["asset"]!["kind"]!.GetValue<string>());
        var probe = details["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "probe")!;
        Assert.Equal("completed", (await _server.WaitForJobAsync(probe["id"]!.GetValue<Guid>(), ["completed", "failed"], TimeSpan.FromSeconds(120)))["state"]!.GetValue<string>());
        details = (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}"))!;
        Assert.Equal(4d, details["asset"]!["metadata"]!["duration"]!.GetValue<double>(), 0.5);
        Assert.False(Directory.Exists(Path.Combine(_server.DataDirectory, "tmp", "fetch", jobId.ToString("N"))));
    }

    [Fact]
    public async Task A_segment_on_a_denied_address_is_refused_by_the_proxy_and_fails_the_job_at_once()
    {
        var (_, jobId) = await PostAsync(_origin.Url("/files/elsewhere.m3u8"), "ytdlp");

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(180));
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("fetch.forbidden_address", job["errorCode"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
        Assert.InRange(_origin.Hits("/files/elsewhere.m3u8"), 1, 3); // yt-dlp reads the playlist up to three times
        Assert.Empty(_denied.Requests);
    }

    [Fact]
    public async Task With_aria2_connections_set_a_direct_download_runs_through_aria2_and_the_proxy_and_is_whole()
    {
        var (assetId, jobId) = await PostAsync(_origin.Url("/file.jpg"), "direct");

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(120));
        Assert.True("completed" == job["state"]!.GetValue<string>(), job.ToJsonString());

        // The proxy counts response headers too: more than the file proves aria2c went through it.
        Assert.InRange(job["result"]!["transferred"]!.GetValue<long>(), _origin.File.Length + 1, _origin.File.Length + 16_384);
        var stored = await File.ReadAllBytesAsync(Path.Combine(_server.DataDirectory, "originals", assetId.ToString("N"), "original"));
        Assert.Equal(_origin.File, stored);
    }

    [Fact]
    public async Task Aria2_following_a_redirect_to_the_metadata_address_is_refused_by_the_proxy()
    {
        var (_, jobId) = await PostAsync(_origin.Url("/to-metadata"), "direct");

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(120));
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("fetch.forbidden_address", job["errorCode"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_yt_dlp_error_names_the_url_without_its_secrets()
    {
        var url = new UriBuilder(_origin.Url("/page")) { Query = "token=s3cr3t&x=1" }.Uri;
        var (_, jobId) = await PostAsync(url, "ytdlp");

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(180));
        Assert.Equal("fetch.not_media", job["errorCode"]!.GetValue<string>());
        var message = job["errorMessage"]!.GetValue<string>();
        Assert.Contains("token=REDACTED", message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", message, StringComparison.Ordinal);
        Assert.DoesNotContain("kiln:", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/file.jpg", "direct", "completed")]
    [InlineData("/files/index.m3u8", "ytdlp", "completed")]
    [InlineData("/page", "ytdlp", "failed")]
    public async Task Auto_mode_picks_direct_for_a_media_file_and_yt_dlp_for_a_manifest_or_a_page(string path, string expectedMode, string expectedState)
    {
        var (_, jobId) = await PostAsync(_origin.Url(path), "auto");

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(180));
        Assert.True(expectedState == job["state"]!.GetValue<string>(), job.ToJsonString());
        if (expectedState == "completed")
        {
            Assert.Equal(expectedMode, job["result"]!["mode"]!.GetValue<string>());
        }
        else
        {
            // A page without media: yt-dlp (never the direct downloader) answers "Unsupported URL".
            Assert.Equal("fetch.not_media", job["errorCode"]!.GetValue<string>());
            Assert.Contains("yt-dlp", job["errorMessage"]!.GetValue<string>(), StringComparison.Ordinal);
        }

        // The sniff asked for the first bytes only.
        Assert.Contains(_origin.Requests, r => r.Path == path && r.Range == "bytes=0-511");
    }

    private async Task<(Guid AssetId, Guid JobId)> PostAsync(Uri url, string mode)
    {
        using var response = await _server.Admin.PostAsJsonAsync("/api/downloads", new JsonObject
        {
            ["url"] = url.AbsoluteUri,
            ["mode"] = mode,
            ["settings"] = new JsonObject { ["jobs"] = new JsonArray() },
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        return (body["assetId"]!.GetValue<Guid>(), body["jobId"]!.GetValue<Guid>());
    }

    /// <summary>A 4-second H.264/AAC stream in four 1-second segments, made by ffmpeg now.</summary>
    private static async Task<Dictionary<string, byte[]>> MakeHlsAsync()
    {
        var dir = Directory.CreateTempSubdirectory("kiln-hls-");
        try
        {
            var psi = new ProcessStartInfo("ffmpeg") { UseShellExecute = false, RedirectStandardError = true };
            foreach (var a in (string[])["-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=440",
                         "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "hls", "-hls_time", "1",
                         "-hls_playlist_type", "vod", Path.Combine(dir.FullName, "index.m3u8")])
            {
                psi.ArgumentList.Add(a);
            }

            using var ffmpeg = Process.Start(psi)!;
            var errors = await ffmpeg.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            await ffmpeg.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.True(ffmpeg.ExitCode == 0, errors);
            var files = dir.GetFiles().ToDictionary(f => f.Name, f => File.ReadAllBytes(f.FullName));
            Assert.Equal(5, files.Count);
            return files;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
