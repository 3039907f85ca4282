using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

/// <summary>
/// ffprobe without Kiln's input allow-lists, for reading what a test's transform wrote (a JPEG frame is read by the
/// image2 demuxer, which Kiln never lets an upload reach).
/// </summary>
internal sealed class OutputProbe(FfmpegRunner runner)
{
    public async Task<MediaProbe> ProbeAsync(string path, CancellationToken cancellationToken)
    {
        var output = await runner.RunFfprobeAsync(
            ["-hide_banner", "-loglevel", "error", "-print_format", "json", "-show_format", "-show_streams", path], cancellationToken);
        Assert.True(output.ExitCode == 0, output.StderrTail);
        return FfprobeParser.Parse(output.Stdout);
    }
}
