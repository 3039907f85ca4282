using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class FfmpegProgressParserTests
{
    [Fact]
    public void Captured_mp4_progress_gives_one_block_per_report_ending_with_end()
    {
        var blocks = FfmpegProgressParser.ParseAll(Captured.Read("progress-mp4.txt"));

        Assert.Equal(2, blocks.Count);
        Assert.Equal(new FfmpegProgressBlock(TimeSpan.Zero, 48, null, 1, false), blocks[0]);
        Assert.Equal(TimeSpan.FromMicroseconds(2960078), blocks[1].OutTime);
        Assert.Equal(3395853, blocks[1].TotalSize);
        Assert.Equal(7.68, blocks[1].Speed);
        Assert.Equal(75, blocks[1].Frame);
        Assert.True(blocks[1].IsEnd);
    }

    [Fact]
    public void Captured_hls_progress_has_no_total_size()
    {
        var blocks = FfmpegProgressParser.ParseAll(Captured.Read("progress-hls.txt"));

        Assert.Equal(2, blocks.Count);
        Assert.All(blocks, b => Assert.Null(b.TotalSize));
        Assert.Equal(TimeSpan.FromSeconds(1.92), blocks[1].OutTime);
        Assert.Equal(3.68, blocks[1].Speed);
    }

    [Fact]
    public void Not_available_values_are_null_rather_than_zero()
    {
        var blocks = FfmpegProgressParser.ParseAll("out_time_us=N/A\nout_time_ms=N/A\nout_time=N/A\ntotal_size=N/A\nspeed=N/A\nprogress=continue\n");

        Assert.Equal(new FfmpegProgressBlock(null, null, null, null, false), Assert.Single(blocks));
    }

    [Fact]
    public void A_negative_start_time_is_treated_as_not_yet_known()
    {
        var blocks = FfmpegProgressParser.ParseAll(
            "out_time_us=-9223372036854775807\nout_time_ms=-9223372036854775807\nout_time=-2562047788:00:54.775807\nprogress=continue\n");

        Assert.Null(Assert.Single(blocks).OutTime);
    }

    [Fact]
    public void Out_time_ms_is_read_as_microseconds_when_out_time_us_is_missing()
    {
        var blocks = FfmpegProgressParser.ParseAll("out_time_ms=1500000\nprogress=continue\n");

        Assert.Equal(TimeSpan.FromSeconds(1.5), Assert.Single(blocks).OutTime);
    }

    [Fact]
    public void Percent_and_eta_come_from_the_expected_duration_and_speed()
    {
        var block = new FfmpegProgressBlock(TimeSpan.FromSeconds(15), 1000, 2.0, 375, false);

        var progress = FfmpegProgressParser.ToMediaProgress(block, TimeSpan.FromSeconds(60), "hls");

        Assert.Equal(25, progress.Percent);
        Assert.Equal("hls", progress.Stage);
        Assert.Equal(2.0, progress.Speed);
        Assert.Equal(TimeSpan.FromSeconds(22.5), progress.Eta);
        Assert.Equal(1000, progress.TotalBytes);
    }

    [Fact]
    public void Percent_is_clamped_to_100_when_ffmpeg_writes_past_the_probed_duration()
    {
        var block = new FfmpegProgressBlock(TimeSpan.FromSeconds(10.2), null, 1.0, null, false);

        var progress = FfmpegProgressParser.ToMediaProgress(block, TimeSpan.FromSeconds(10), "encode");

        Assert.Equal(100, progress.Percent);
        Assert.Equal(TimeSpan.Zero, progress.Eta);
    }

    [Fact]
    public void The_end_block_is_100_percent_even_without_a_duration()
    {
        var progress = FfmpegProgressParser.ToMediaProgress(new FfmpegProgressBlock(null, 5, null, null, true), null, "x");

        Assert.Equal(100, progress.Percent);
        Assert.Equal(TimeSpan.Zero, progress.Eta);
    }

    [Fact]
    public void Without_a_duration_the_percent_stays_zero_and_there_is_no_eta()
    {
        var progress = FfmpegProgressParser.ToMediaProgress(new FfmpegProgressBlock(TimeSpan.FromSeconds(3), null, 1.5, null, false), null, "x");

        Assert.Equal(0, progress.Percent);
        Assert.Null(progress.Eta);
        Assert.Equal(1.5, progress.Speed);
    }
}
