using Kiln.Processing;

namespace Kiln.Pipelines;

/// <summary>
/// Adapts media progress (Kiln.Media knows nothing of jobs) to the job's reporter. A job's <c>totalBytes</c> is the
/// size of the whole input it works through (docs/realtime.md), the same in every report from the first one on; the
/// bytes a tool has written so far are not a total (HLS showed 0 for its first seconds).
/// </summary>
internal sealed class MediaProgressAdapter(IProgress<JobProgress> target, long? inputBytes) : IProgress<Kiln.Media.MediaProgress>
{
    public static MediaProgressAdapter For(JobContext context) => new(context.Progress, context.InputBytes);

    public void Report(Kiln.Media.MediaProgress value) =>
        target.Report(new JobProgress(value.Percent, value.Stage, value.Speed, value.Eta?.TotalSeconds, inputBytes));
}

internal static class OutputFiles
{
    /// <summary>
    /// Puts the original in the output directory as a hard link (no copy, same file system): used when an
    /// optimizer's output would be larger, so the OPTIMIZED derivative is the original bytes.
    /// </summary>
    public static string LinkOriginal(string inputPath, string outputPath)
    {
        if (!HardLink.TryCreate(outputPath, inputPath))
        {
            File.Copy(inputPath, outputPath, overwrite: true);
        }

        return outputPath;
    }
}

internal static partial class HardLink
{
    public static bool TryCreate(string newPath, string existingPath) => link(existingPath, newPath) == 0;

    [System.Runtime.InteropServices.LibraryImport("libc", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
    private static partial int link(string oldpath, string newpath);
}
