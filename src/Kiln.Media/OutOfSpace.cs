namespace Kiln.Media;

/// <summary>
/// Recognises "the disk is full" wherever it surfaces: an <see cref="IOException"/> from our own writes (on Linux
/// .NET puts the errno in <see cref="Exception.HResult"/>: ENOSPC 28, EDQUOT 122) or a child tool's stderr. It becomes
/// the one retryable error code <see cref="Code"/>, so a full disk is not reported as a 500, an I/O error or a
/// half-written HLS ladder that hides the cause.
/// </summary>
public static class OutOfSpace
{
    public const string Code = "storage.full";

    private const int Enospc = 28;
    private const int Edquot = 122;

    /// <summary>What ffmpeg (and most C tools, through strerror) print for ENOSPC and EDQUOT.</summary>
    private static readonly string[] ToolMessages = ["No space left on device", "Disk quota exceeded"];

    public static bool Is(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException { HResult: Enospc or Edquot })
            {
                return true;
            }
        }

        return false;
    }

    public static bool InToolOutput(string stderr) => ToolMessages.Any(m => stderr.Contains(m, StringComparison.Ordinal));

    public static MediaException Error(Exception? inner = null) => new(
        Code,
        "The data directory's disk is full; the job is retried once space is freed (see Kiln:MinFreeDiskBytes and /health/ready).",
        retryable: true,
        inner);
}
