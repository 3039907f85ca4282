using Kiln.Media.FFmpeg;
using Kiln.Media.Video;

namespace Kiln.Tests.Media.Av;

public sealed class VideoOptimizerTests(AvFixtures fixtures)
{
    private readonly VideoOptimizer _optimizer = new(fixtures.Runner);
    private readonly MediaProber _prober = new(fixtures.Runner);

    [Fact]
    public async Task A_smaller_encode_replaces_the_output_and_reports_the_bytes_saved()
    {
        var input = await fixtures.VideoWithAudio;
        var output = Path.Combine(fixtures.NewOutputDirectory(), "optimized.mp4");
        var progress = new RecordingProgress();

        var result = await _optimizer.OptimizeAsync(input, output, new VideoOptimizeSettings { Crf = 35, Preset = "fast" }, progress, TestContext.Current.CancellationToken);

        Assert.False(result.KeptOriginal);
        Assert.Null(result.Note);
        Assert.Equal(output, result.OutputPath);
        Assert.Equal(new FileInfo(input).Length, result.OriginalBytes);
        Assert.Equal(new FileInfo(output).Length, result.OutputBytes);
        Assert.Equal(result.OriginalBytes - result.OutputBytes, result.BytesSaved);
        Assert.True(result.BytesSaved > 0);
        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal(("h264", "aac", 320, 240), (probe.Video!.Codec, probe.Audio!.Codec, probe.Video.Width, probe.Video.Height));
        Assert.Equal(4, probe.Duration!.Value.TotalSeconds, 0);
        var boxes = Mp4Boxes.TopLevel(output);
        Assert.True(boxes.IndexOf("moov") < boxes.IndexOf("mdat"));
        Assert.Equal(100, progress.Reports[^1].Percent);
    }

    [Fact]
    public async Task A_larger_encode_is_discarded_and_the_original_kept_with_a_note()
    {
        var input = await fixtures.VideoWithAudio;
        var dir = fixtures.NewOutputDirectory();

        var result = await _optimizer.OptimizeAsync(
            input, Path.Combine(dir, "optimized.mp4"), new VideoOptimizeSettings { Crf = 0, Preset = "ultrafast" }, null, TestContext.Current.CancellationToken);

        Assert.True(result.KeptOriginal);
        Assert.Equal(Path.GetFullPath(input), result.OutputPath);
        Assert.Equal((result.OriginalBytes, 0L), (result.OutputBytes, result.BytesSaved));
        Assert.True(result.EncodedBytes > result.OriginalBytes);
        Assert.Contains("original is kept", result.Note, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task The_short_side_is_capped_when_asked()
    {
        var output = Path.Combine(fixtures.NewOutputDirectory(), "optimized.mp4");

        await _optimizer.OptimizeAsync(
            await fixtures.PortraitVideo, output, new VideoOptimizeSettings { MaxShortSide = 120, Preset = "ultrafast" }, null, TestContext.Current.CancellationToken);

        var probe = await _prober.ProbeAsync(output, TestContext.Current.CancellationToken);
        Assert.Equal((120, 160), (probe.Video!.Width, probe.Video.Height));
    }
}
