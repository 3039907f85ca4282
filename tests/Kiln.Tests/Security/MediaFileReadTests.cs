using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Media.Audio;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;
using Kiln.Tests.Media.Av;

namespace Kiln.Tests.Security;

/// <summary>
/// The reproduction of the file-read hole: a client uploads a text HLS playlist that names a file on the server
/// (another owner's upload) and asks for ffmpeg jobs on it. Each layer must refuse on its own.
/// </summary>
public sealed class MediaFileReadTests(AvFixtures fixtures) : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Asking_for_video_jobs_on_an_uploaded_playlist_is_refused_with_400_naming_the_kind()
    {
        var victimFile = await UploadVictimVideoAsync();
        var (attacker, _) = await _server.CreateClientKeyAsync("attacker");

        foreach (var kind in new[] { "video.preview", "video.hls", "audio.waveform", "video.thumbnail" })
        {
            using var form = new MultipartFormDataContent
            {
                { new ByteArrayContent(Playlist(victimFile)), "file", "clip.m3u8" },
                { new StringContent($$"""{"jobs":["{{kind}}"]}"""), "settings" },
            };
            using var response = await attacker.PostAsync("/api/uploads", form, TestContext.Current.CancellationToken);

            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var problem = (await response.Content.ReadFromJsonAsync<JsonObject>(TestContext.Current.CancellationToken))!;
            Assert.Equal("upload.job_not_for_media", problem["errorCode"]!.GetValue<string>());
            Assert.Contains($"'{kind}'", problem["detail"]!.GetValue<string>());
            Assert.Contains("this asset is other", problem["detail"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task A_playlist_uploaded_without_settings_gets_only_its_probe()
    {
        var victimFile = await UploadVictimVideoAsync();
        var (attacker, _) = await _server.CreateClientKeyAsync("attacker");

        var body = await _server.UploadAsync([("clip.m3u8", Playlist(victimFile))], client: attacker);

        var asset = body["assets"]![0]!;
        Assert.Equal("other", asset["kind"]!.GetValue<string>());
        Assert.Equal(["probe"], asset["jobs"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_video_job_that_reaches_the_queue_on_a_non_video_asset_fails_without_running_ffmpeg()
    {
        var victimFile = await UploadVictimVideoAsync();
        var (attacker, attackerId) = await _server.CreateClientKeyAsync("attacker");
        var body = await _server.UploadAsync([("clip.m3u8", Playlist(victimFile))], client: attacker);
        var assetId = body["assets"]![0]!["id"]!.GetValue<Guid>();

        // As if a bug in validation let it through: straight into the queue.
        var job = new NewJob { Kind = "video.preview", Queue = Kinds.VideoQueue, AssetId = assetId, OwnerId = attackerId, MaxAttempts = 1 };
        var enqueued = await _server.Get<JobStore>().EnqueueAsync([job], TestContext.Current.CancellationToken);
        _server.Get<JobStore>().Announce(enqueued);

        var done = await _server.WaitForJobAsync(job.Id, ["completed", "failed"], TimeSpan.FromSeconds(60));
        Assert.Equal("failed", done["state"]!.GetValue<string>());
        Assert.Equal("job.media_kind_mismatch", done["errorCode"]!.GetValue<string>());
        var details = await _server.Admin.GetJsonAsync($"/api/assets/{assetId}");
        Assert.Empty(details["derivatives"]!.AsArray());
    }

    [Fact]
    public async Task Ffmpeg_and_ffprobe_refuse_a_playlist_even_when_handed_one_directly()
    {
        var target = await fixtures.VideoWithAudio;
        var playlist = Path.Combine(fixtures.NewOutputDirectory(), "clip.m3u8");
        await File.WriteAllBytesAsync(playlist, Playlist(target), TestContext.Current.CancellationToken);
        var output = Path.Combine(fixtures.NewOutputDirectory(), "preview.mp4");

        var probe = await Assert.ThrowsAsync<MediaException>(() => new MediaProber(fixtures.Runner).ProbeAsync(playlist, TestContext.Current.CancellationToken));
        Assert.Equal("media.unreadable", probe.Code);
        Assert.Contains("not on whitelist", probe.Message);
        var preview = await Assert.ThrowsAsync<MediaException>(() =>
            new VideoPreview(fixtures.Runner).CreateAsync(playlist, output, null, null, TestContext.Current.CancellationToken));
        Assert.Equal("media.unreadable", preview.Code);
        var waveform = await Assert.ThrowsAsync<MediaException>(() =>
            new WaveformGenerator(fixtures.Runner).GenerateAsync(playlist, output + ".json", output + ".svg", null, null, TestContext.Current.CancellationToken));
        Assert.Equal("media.unreadable", waveform.Code);
        Assert.False(File.Exists(output));
    }

    [Theory]
    [InlineData("mov,mp4,m4a,3gp,3g2,mj2", "mov")]
    [InlineData("matroska,webm", "matroska")]
    [InlineData("wav", "wav")]
    public void The_demuxer_is_pinned_to_the_allowed_name_the_probe_found(string formatName, string demuxer) =>
        Assert.Equal(demuxer, AvInput.DemuxerOf(new MediaProbe(formatName, null, null, null, [])));

    [Theory]
    [InlineData("hls")]
    [InlineData("concat")]
    [InlineData("image2")]
    [InlineData(null)]
    public void A_format_that_opens_other_files_is_never_pinned(string? formatName)
    {
        var e = Assert.Throws<MediaException>(() => AvInput.DemuxerOf(new MediaProbe(formatName, null, null, null, [])));
        Assert.Equal("media.unsupported_container", e.Code);
    }

    [Fact]
    public async Task A_failed_job_names_the_file_but_never_a_server_path()
    {
        // A real MP4 cut before its moov atom: detected as video by its header, unreadable to ffprobe.
        var whole = await File.ReadAllBytesAsync(await fixtures.VideoWithAudio, TestContext.Current.CancellationToken);
        var broken = whole[..(whole.Length / 2)];

        var body = await _server.UploadAsync([("broken.mp4", broken)], new JsonObject { ["jobs"] = new JsonArray("video.preview") });
        var probeId = body["assets"]![0]!["jobs"]![0]!["id"]!.GetValue<Guid>();

        var probe = await _server.WaitForJobAsync(probeId, ["completed", "failed"], TimeSpan.FromSeconds(60));
        Assert.Equal("failed", probe["state"]!.GetValue<string>());
        var message = probe["errorMessage"]!.GetValue<string>();
        Assert.DoesNotContain(_server.DataDirectory, message);
        Assert.DoesNotContain("/originals/", message);
        Assert.Contains("original: ", message);
    }

    /// <summary>Another owner's video, uploaded and stored; returns the absolute path of its original on disk.</summary>
    private async Task<string> UploadVictimVideoAsync()
    {
        var (victim, _) = await _server.CreateClientKeyAsync("victim");
        var body = await _server.UploadAsync([("secret.mp4", await File.ReadAllBytesAsync(await fixtures.VideoWithAudio))], new JsonObject { ["jobs"] = new JsonArray() }, victim);
        var id = body["assets"]![0]!["id"]!.GetValue<string>();
        var path = Path.Combine(_server.DataDirectory, "originals", id.Replace("-", string.Empty), "original");
        Assert.True(File.Exists(path), path);
        return path;
    }

    private static byte[] Playlist(string target) =>
        Encoding.UTF8.GetBytes($"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:4.0,\n{target}\n#EXT-X-ENDLIST\n");
}
