using Kiln.Media;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;

namespace Kiln.Tests.Media.Av;

public sealed class HlsPackagerTests(AvFixtures fixtures)
{
    private static readonly HlsSettings OneSecondSegments = new() { SegmentSeconds = 1, Preset = "ultrafast" };
    private readonly HlsPackager _packager = new(fixtures.Runner);
    private readonly MediaProber _prober = new(fixtures.Runner);

    [Fact]
    public async Task A_720p_source_is_packaged_as_360p_and_720p_renditions_under_one_master_playlist()
    {
        var dir = Path.Combine(fixtures.NewOutputDirectory(), "hls");
        var progress = new RecordingProgress();

        var result = await _packager.PackageAsync(await fixtures.Video720, dir, OneSecondSegments, progress, TestContext.Current.CancellationToken);

        Assert.Equal(Path.Combine(dir, "master.m3u8"), result.MasterPlaylistPath);
        Assert.Equal([("360p", 640, 360), ("720p", 1280, 720)], result.Renditions.Select(r => (r.Name, r.Width, r.Height)));
        var master = await File.ReadAllTextAsync(result.MasterPlaylistPath, TestContext.Current.CancellationToken);
        var variants = HlsPlaylistParser.ParseMaster(master);
        Assert.Equal(["360p/index.m3u8", "720p/index.m3u8"], variants.Select(v => v.Uri));
        Assert.All(variants, v => Assert.Equal("avc1", v.Codecs![..4]));
        Assert.All(variants, v => Assert.Contains("mp4a.40.2", v.Codecs, StringComparison.Ordinal));
        Assert.Equal(result.Renditions.Select(r => r.Bandwidth), variants.Select(v => v.Bandwidth));
        Assert.True(result.Renditions[1].Bandwidth > result.Renditions[0].Bandwidth);
        Assert.True(result.HasAudio);
        Assert.Equal([Path.Combine(dir, "360p"), Path.Combine(dir, "720p")], Directory.GetDirectories(dir).Order(StringComparer.Ordinal));
        Assert.Equal(100, progress.Reports[^1].Percent);
        Assert.True(progress.Reports[^1].TotalBytes > 0);

        foreach (var rendition in result.Renditions)
        {
            Assert.Equal(Path.Combine(dir, rendition.Name, "index.m3u8"), rendition.PlaylistPath);
            var playlist = await File.ReadAllTextAsync(rendition.PlaylistPath, TestContext.Current.CancellationToken);
            Assert.Contains("#EXT-X-PLAYLIST-TYPE:VOD", playlist, StringComparison.Ordinal);
            Assert.Contains("#EXT-X-INDEPENDENT-SEGMENTS", playlist, StringComparison.Ordinal);
            var segments = HlsPlaylistParser.ParseSegments(playlist);
            Assert.Equal(3, segments.Count);
            Assert.Equal(segments.Count, rendition.SegmentCount);
            Assert.All(segments, s => Assert.True(File.Exists(Path.Combine(dir, rendition.Name, s)), s));

            var first = await _prober.ProbeAsync(Path.Combine(dir, rendition.Name, segments[0]), TestContext.Current.CancellationToken);
            Assert.Equal(("h264", rendition.Width, rendition.Height, "aac"), (first.Video!.Codec, first.Video.Width, first.Video.Height, first.Audio!.Codec));
            Assert.InRange(first.Duration!.Value.TotalSeconds, 0.9, 1.1);
        }
    }

    [Fact]
    public async Task A_source_smaller_than_the_lowest_rung_gets_one_rendition_at_its_own_height_and_no_audio_is_fine()
    {
        var dir = fixtures.NewOutputDirectory();

        var result = await _packager.PackageAsync(await fixtures.VideoWithoutAudio, dir, OneSecondSegments, null, TestContext.Current.CancellationToken);

        var rendition = Assert.Single(result.Renditions);
        Assert.Equal(("240p", 320, 240), (rendition.Name, rendition.Width, rendition.Height));
        Assert.False(result.HasAudio);
        var variant = Assert.Single(HlsPlaylistParser.ParseMaster(await File.ReadAllTextAsync(result.MasterPlaylistPath, TestContext.Current.CancellationToken)));
        Assert.DoesNotContain("mp4a", variant.Codecs, StringComparison.Ordinal);
        Assert.Equal((320, 240), (variant.Width, variant.Height));
        Assert.Equal(3, rendition.SegmentCount);
    }

    [Fact]
    public async Task A_rotated_source_is_packaged_upright()
    {
        var dir = fixtures.NewOutputDirectory();

        var result = await _packager.PackageAsync(await fixtures.RotatedVideo, dir, OneSecondSegments, null, TestContext.Current.CancellationToken);

        var rendition = Assert.Single(result.Renditions);
        Assert.Equal((240, 320), (rendition.Width, rendition.Height));
        var segment = Directory.GetFiles(Path.GetDirectoryName(rendition.PlaylistPath)!, "*.ts").Order(StringComparer.Ordinal).First();
        var probe = await _prober.ProbeAsync(segment, TestContext.Current.CancellationToken);
        Assert.Equal((240, 320), (probe.Video!.Width, probe.Video.Height));
    }

    [Fact]
    public async Task Cancelling_a_long_transcode_kills_ffmpeg_and_removes_the_output()
    {
        var marker = "kiln-hls-cancel-" + Guid.NewGuid().ToString("N");
        var dir = Path.Combine(fixtures.Root, marker);
        var input = await fixtures.Video1080Long;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var progress = new RecordingProgress(p =>
        {
            if (p.Stage == "hls" && p.Percent > 0 && !cts.IsCancellationRequested)
            {
                cts.Cancel();
            }
        });

        var run = _packager.PackageAsync(input, dir, new HlsSettings { SegmentSeconds = 2 }, progress, cts.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Empty(await Processes.FindAsync(marker, TestContext.Current.CancellationToken));
        Assert.False(Directory.Exists(dir), "the output directory was left behind");
    }

    [Fact]
    public async Task An_encoder_failure_leaves_the_existing_output_directory_as_it_was()
    {
        var dir = fixtures.NewOutputDirectory();
        await File.WriteAllTextAsync(Path.Combine(dir, "keep.txt"), "x", TestContext.Current.CancellationToken);

        var ex = await Assert.ThrowsAsync<MediaException>(async () => await _packager.PackageAsync(
            await fixtures.VideoWithAudio, dir, OneSecondSegments with { Preset = "no-such-preset" }, null, TestContext.Current.CancellationToken));

        Assert.Equal("media.ffmpeg_failed", ex.Code);
        Assert.Equal([Path.Combine(dir, "keep.txt")], Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task A_corrupt_input_fails_before_anything_is_created()
    {
        var dir = Path.Combine(fixtures.Root, "never-" + Guid.NewGuid().ToString("N"));

        var ex = await Assert.ThrowsAsync<MediaException>(async () =>
            await _packager.PackageAsync(await fixtures.RandomBytes, dir, null, null, TestContext.Current.CancellationToken));

        Assert.Equal("media.unreadable", ex.Code);
        Assert.False(Directory.Exists(dir));
    }
}
