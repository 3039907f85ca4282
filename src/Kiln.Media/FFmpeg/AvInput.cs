namespace Kiln.Media.FFmpeg;

/// <summary>
/// The only way Kiln hands an input to ffmpeg or ffprobe. A file is opened with the <c>file</c> protocol alone and
/// only by demuxers that read the one file they are given: a text HLS playlist, a concat list or an image-sequence
/// pattern would make ffmpeg open further files named inside the upload (another owner's segments, server files),
/// so those demuxers are never allowed, whatever the bytes claim to be.
/// </summary>
public static class AvInput
{
    /// <summary>
    /// The container demuxers Kiln accepts: the containers <see cref="Detection.ContentSniffer"/> recognises as audio
    /// or video. ffmpeg matches any name of a demuxer, so <c>mov</c> covers mp4/m4a/3gp and <c>matroska</c> webm.
    /// </summary>
    public const string AllowedDemuxers = "mov,matroska,avi,ogg,flac,mp3,aac,wav,mpeg,mpegts";

    private static readonly HashSet<string> Allowed = new(AllowedDemuxers.Split(','), StringComparer.Ordinal);

    /// <summary>Arguments for ffprobe before the format is known: the allow-lists bound what it may pick.</summary>
    internal static IReadOnlyList<string> ForProbe(string path) =>
        ["-protocol_whitelist", "file", "-format_whitelist", AllowedDemuxers, "-i", AvPaths.Input(path)];

    /// <summary>
    /// Arguments for ffmpeg after the probe: the demuxer is pinned with <c>-f</c> to the one ffprobe chose, so the
    /// second open cannot be talked into another one.
    /// </summary>
    internal static IReadOnlyList<string> ForFfmpeg(string path, MediaProbe probe) =>
        ["-protocol_whitelist", "file", "-format_whitelist", AllowedDemuxers, "-f", DemuxerOf(probe), "-i", AvPaths.Input(path)];

    /// <summary>The allowed demuxer name of a probe's format (<c>mov,mp4,m4a,…</c> → <c>mov</c>).</summary>
    /// <exception cref="MediaException"><c>media.unsupported_container</c> when no name of the format is allowed.</exception>
    internal static string DemuxerOf(MediaProbe probe) =>
        probe.FormatName?.Split(',').FirstOrDefault(Allowed.Contains)
        ?? throw new MediaException("media.unsupported_container", $"The container format '{probe.FormatName}' is not accepted.");
}
