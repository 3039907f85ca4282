using Kiln.Media;
using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class FfmpegRunnerTests
{
    private readonly FfmpegRunner _runner = new();

    [Fact]
    public async Task Progress_is_reported_in_percent_of_the_expected_duration_and_ends_at_100()
    {
        var progress = new RecordingProgress();

        await _runner.RunAsync(
            ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4", "-c:v", "libx264", "-preset", "medium", "-f", "null", "-"],
            TimeSpan.FromSeconds(4), "encode", progress, TestContext.Current.CancellationToken);

        var reports = progress.Reports;
        Assert.NotEmpty(reports);
        Assert.Equal(100, reports[^1].Percent);
        Assert.All(reports, r => Assert.Equal("encode", r.Stage));
        Assert.All(reports, r => Assert.InRange(r.Percent, 0, 100));
        Assert.Equal(reports.Select(r => r.Percent).Order(), reports.Select(r => r.Percent));
        Assert.NotNull(reports[^1].Speed);
    }

    [Fact]
    public async Task A_failing_ffmpeg_throws_with_the_tail_of_its_stderr()
    {
        var ex = await Assert.ThrowsAsync<MediaException>(() => _runner.RunAsync(
            ["-i", "file:/nonexistent/kiln-missing.mp4", "-f", "null", "-"], null, "encode", null, TestContext.Current.CancellationToken));

        Assert.Equal("media.ffmpeg_failed", ex.Code);
        Assert.Contains("No such file or directory", ex.Message, StringComparison.Ordinal);
        Assert.Contains("exited with code 1", ex.Message, StringComparison.Ordinal);
        Assert.False(ex.Retryable);
    }

    [Fact]
    public async Task A_missing_binary_is_reported_as_a_missing_tool()
    {
        var runner = new FfmpegRunner(new FfmpegOptions { FfmpegPath = "/nonexistent/ffmpeg" });

        var ex = await Assert.ThrowsAsync<MediaException>(() => runner.RunAsync(["-version"], null, "x", null, TestContext.Current.CancellationToken));

        Assert.Equal("media.tool_missing", ex.Code);
        Assert.Contains("/nonexistent/ffmpeg", ex.Message, StringComparison.Ordinal);
    }

    // The encode would take minutes: a kill that did not work fails on the test's timeout. How fast the kill is
    // depends on the machine's load and is not asserted here.
    [Fact(Timeout = 120_000)]
    public async Task Cancelling_kills_ffmpeg_and_throws_operation_cancelled()
    {
        var marker = "kiln-cancel-" + Guid.NewGuid().ToString("N");
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var progress = new RecordingProgress(_ => cts.Cancel());

        var run = _runner.RunAsync(
            ["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=600", "-metadata", "comment=" + marker, "-c:v", "libx264", "-f", "null", "-"],
            TimeSpan.FromSeconds(600), "encode", progress, cts.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Empty(await Processes.FindAsync(marker, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_failing_output_reader_kills_ffmpeg_and_surfaces_its_own_exception()
    {
        var marker = "kiln-reader-" + Guid.NewGuid().ToString("N");

        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => _runner.RunWithOutputAsync(
            ["-f", "lavfi", "-i", "sine=duration=600", "-metadata", "comment=" + marker, "-f", "s16le", "pipe:1"],
            async (stdout, ct) =>
            {
                await stdout.ReadExactlyAsync(new byte[4096], ct);
                throw new InvalidDataException("reader gave up");
            },
            TestContext.Current.CancellationToken));

        Assert.Equal("reader gave up", ex.Message);
        Assert.Empty(await Processes.FindAsync(marker, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task An_already_cancelled_token_starts_nothing()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _runner.RunAsync(["-version"], null, "x", null, cts.Token));
    }

    [Fact]
    public async Task The_version_line_names_ffmpeg()
    {
        var version = await _runner.GetVersionAsync(TestContext.Current.CancellationToken);

        Assert.StartsWith("ffmpeg version ", version, StringComparison.Ordinal);
    }

    [Fact]
    public void The_common_flags_come_first_and_progress_goes_to_stdout()
    {
        var args = FfmpegRunner.BuildFfmpegArguments(["-i", "x"], withProgress: true);

        Assert.Equal(["-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning", "-progress", "pipe:1", "-i", "x"], args);
        Assert.DoesNotContain("-progress", FfmpegRunner.BuildFfmpegArguments(["-i", "x"], withProgress: false));
    }
}
