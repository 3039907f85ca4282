using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Media.FFmpeg;
using Kiln.Tests.Infrastructure;
using Kiln.Tests.Media.Av;

namespace Kiln.Tests.Pipelines;

/// <summary>Upload → default pipeline → derivatives, through the HTTP API with real ffmpeg.</summary>
public sealed class AvPipelineTests(AvFixtures fixtures) : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_video_upload_gets_a_frame_a_preview_an_hls_ladder_and_a_waveform()
    {
        var body = await _server.UploadAsync([("clip.mp4", await File.ReadAllBytesAsync(await fixtures.VideoWithAudio))]);
        var asset = body["assets"]![0]!;
        Assert.Equal("video", asset["kind"]!.GetValue<string>());
        var kinds = asset["jobs"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>()).Order().ToArray();
        Assert.Equal(["audio.waveform", "probe", "video.hls", "video.preview", "video.thumbnail"], kinds);

        await WaitForAllAsync(asset);
        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}");
        Assert.Equal(4d, details!["asset"]!["metadata"]!["duration"]!.GetValue<double>(), 1);
        var derivatives = details["derivatives"]!.AsArray().ToDictionary(d => d!["type"]!.GetValue<string>() + ":" + d["variant"]!.GetValue<string>(), d => d!);
        Assert.Equal(["HLS:", "PREVIEW:", "THUMBNAIL:", "WAVEFORM:json", "WAVEFORM:svg"], derivatives.Keys.Order().ToArray());

        var preview = await DownloadAsync(derivatives["PREVIEW:"]["id"]!.GetValue<Guid>(), "preview.mp4");
        var probe = await new MediaProber(fixtures.Runner).ProbeAsync(preview, TestContext.Current.CancellationToken);
        Assert.Equal("h264", probe.Video!.Codec);
        Assert.Equal("aac", probe.Audio!.Codec);
        Assert.InRange(probe.Duration!.Value.TotalSeconds, 3.5, 4.5);

        // Playlists come back with absolute references into the derivative's directory, so a player can follow
        // them from the download URL; with a signed URL every reference carries the signature (players drop the
        // query string of the URL they were given).
        var hlsId = derivatives["HLS:"]["id"]!.GetValue<Guid>();
        using (var master = await _server.Admin.GetAsync($"/api/files/{hlsId}/download"))
        {
            Assert.Equal("application/vnd.apple.mpegurl", master.Content.Headers.ContentType!.MediaType);
            await FollowPlaylistAsync(_server.Admin, await master.Content.ReadAsStringAsync(), hlsId, signed: null);
        }

        var signed = (await (await _server.Admin.PostAsync($"/api/files/{hlsId}/signed-url", null)).Content.ReadFromJsonAsync<JsonObject>())!;
        using var anonymous = _server.CreateClient();
        using (var master = await anonymous.GetAsync(signed["url"]!.GetValue<string>()))
        {
            Assert.Equal(HttpStatusCode.OK, master.StatusCode);
            await FollowPlaylistAsync(anonymous, await master.Content.ReadAsStringAsync(), hlsId, signed["query"]!.GetValue<string>());
        }

        var waveform = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/files/{derivatives["WAVEFORM:json"]["id"]}/download");
        Assert.Equal(2, waveform!["version"]!.GetValue<int>());
        Assert.Equal(waveform["length"]!.GetValue<int>() * 2 * waveform["channels"]!.GetValue<int>(), waveform["data"]!.AsArray().Count);
    }

    /// <summary>Master → first variant playlist → first segment, each by the reference the previous one gave.</summary>
    private static async Task FollowPlaylistAsync(HttpClient client, string master, Guid hlsId, string? signed)
    {
        var variantUrl = master.Split('\n').First(l => l.Contains(".m3u8", StringComparison.Ordinal) && !l.StartsWith('#'));
        Assert.StartsWith($"/api/files/{hlsId}/content/", variantUrl, StringComparison.Ordinal);
        Assert.EndsWith(signed is null ? ".m3u8" : "?" + signed, variantUrl, StringComparison.Ordinal);
        using var variant = await client.GetAsync(variantUrl);
        Assert.Equal(HttpStatusCode.OK, variant.StatusCode);

        var segmentUrl = (await variant.Content.ReadAsStringAsync()).Split('\n').First(l => l.Length > 0 && !l.StartsWith('#'));
        Assert.StartsWith($"/api/files/{hlsId}/content/", segmentUrl, StringComparison.Ordinal);
        using var segment = await client.GetAsync(segmentUrl);
        Assert.Equal(HttpStatusCode.OK, segment.StatusCode);
        Assert.True((await segment.Content.ReadAsByteArrayAsync()).Length > 1000);
    }

    [Fact]
    public async Task A_video_without_sound_completes_its_waveform_job_with_nothing_to_draw()
    {
        var body = await _server.UploadAsync([("silent.mp4", await File.ReadAllBytesAsync(await fixtures.VideoWithoutAudio))]);
        var jobs = await WaitForAllAsync(body["assets"]![0]!);
        var waveform = jobs.Single(j => j["kind"]!.GetValue<string>() == "audio.waveform");
        Assert.Equal("completed", waveform["state"]!.GetValue<string>());
        Assert.NotNull(waveform["result"]!["skipped"]);
    }

    [Fact]
    public async Task An_audio_upload_gets_a_waveform_and_an_optimized_file()
    {
        var body = await _server.UploadAsync([("tone.wav", await File.ReadAllBytesAsync(await fixtures.Wav))]);
        var asset = body["assets"]![0]!;
        Assert.Equal("audio", asset["kind"]!.GetValue<string>());
        var jobs = await WaitForAllAsync(asset);
        var optimize = jobs.Single(j => j["kind"]!.GetValue<string>() == "audio.optimize");
        Assert.True(optimize["result"]!["bytesSaved"]!.GetValue<long>() > 0);
        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}");
        var optimized = details!["derivatives"]!.AsArray().Single(d => d!["type"]!.GetValue<string>() == "OPTIMIZED")!;
        Assert.Equal("audio/ogg", optimized["contentType"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_corrupt_video_fails_its_probe_with_a_clear_code_and_leaves_no_derivative()
    {
        var body = await _server.UploadAsync([("broken.mp4", await File.ReadAllBytesAsync(await fixtures.TruncatedVideo))]);
        var asset = body["assets"]![0]!;
        var jobs = await WaitForAllAsync(asset);
        var probe = jobs.Single(j => j["kind"]!.GetValue<string>() == "probe");
        Assert.Equal("failed", probe["state"]!.GetValue<string>());
        Assert.StartsWith("media.", probe["errorCode"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.All(jobs.Where(j => j != probe), j => Assert.Equal("parent_failed", j["errorCode"]!.GetValue<string>()));
        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}");
        Assert.Empty(details!["derivatives"]!.AsArray());
    }

    private async Task<List<JsonObject>> WaitForAllAsync(JsonNode asset)
    {
        var jobs = new List<JsonObject>();
        foreach (var job in asset["jobs"]!.AsArray())
        {
            jobs.Add(await _server.WaitForJobAsync(job!["id"]!.GetValue<Guid>(), ["completed", "failed", "cancelled"], TimeSpan.FromSeconds(120)));
        }

        return jobs;
    }

    private async Task<string> DownloadAsync(Guid fileId, string name)
    {
        var path = Path.Combine(fixtures.NewOutputDirectory(), name);
        await File.WriteAllBytesAsync(path, await _server.Admin.GetByteArrayAsync($"/api/files/{fileId}/download"));
        return path;
    }
}
