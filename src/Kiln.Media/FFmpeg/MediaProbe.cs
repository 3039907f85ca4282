namespace Kiln.Media.FFmpeg;

public enum MediaStreamType
{
    Other = 0,
    Video,
    Audio,
    Subtitle,
    Data,
}

/// <summary>One stream of a probed file, as ffprobe reported it.</summary>
/// <param name="Rotation">Display rotation in degrees, normalised to 0, 90, 180 or 270 (or whatever other angle the file says, in 0..359).</param>
/// <param name="IsAttachedPicture">Cover art in an audio file: a "video" stream that is not video.</param>
public sealed record MediaStream(
    int Index,
    MediaStreamType Type,
    string? Codec,
    string? Profile,
    int? Width,
    int? Height,
    int Rotation,
    double? FrameRate,
    int? SampleRate,
    int? Channels,
    long? BitRate,
    TimeSpan? Duration,
    bool IsAttachedPicture)
{
    /// <summary>True when the display is turned a quarter: width and height swap on screen.</summary>
    public bool IsQuarterTurned => Rotation is 90 or 270;

    public int? DisplayWidth => IsQuarterTurned ? Height : Width;

    public int? DisplayHeight => IsQuarterTurned ? Width : Height;
}

/// <summary>What ffprobe knows about a file: container facts and its streams.</summary>
public sealed record MediaProbe(
    string? FormatName,
    TimeSpan? Duration,
    long? BitRate,
    long? Size,
    IReadOnlyList<MediaStream> Streams)
{
    /// <summary>The first real video stream (cover art is not video).</summary>
    public MediaStream? Video => Streams.FirstOrDefault(s => s.Type == MediaStreamType.Video && !s.IsAttachedPicture);

    public MediaStream? Audio => Streams.FirstOrDefault(s => s.Type == MediaStreamType.Audio);

    public bool HasVideo => Video is not null;

    public bool HasAudio => Audio is not null;

    /// <summary>Width on screen, after the rotation is applied.</summary>
    public int? DisplayWidth => Video?.DisplayWidth;

    /// <summary>Height on screen, after the rotation is applied.</summary>
    public int? DisplayHeight => Video?.DisplayHeight;
}
