namespace Kiln.Media.FFmpeg;

/// <summary>Where the ffmpeg tools live and how long to wait for them to die after a kill.</summary>
public sealed class FfmpegOptions
{
    /// <summary>ffmpeg executable: a name looked up on PATH or an absolute path.</summary>
    public string FfmpegPath { get; set; } = "ffmpeg";

    /// <summary>ffprobe executable: a name looked up on PATH or an absolute path.</summary>
    public string FfprobePath { get; set; } = "ffprobe";

    /// <summary>
    /// How long to wait for a killed process to be reaped. SIGKILL is immediate on Linux, so this only
    /// bounds a pathological case (a process stuck in uninterruptible I/O) instead of hanging a worker.
    /// </summary>
    public TimeSpan KillWaitTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
