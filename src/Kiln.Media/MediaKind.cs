namespace Kiln.Media;

/// <summary>What an asset is, detected from its bytes (never from its name or the client's MIME type).</summary>
public enum MediaKind
{
    Other = 0,
    Image,
    Audio,
    Video,
}

public static class MediaKindNames
{
    /// <summary>The name stored and shown for a kind: image, audio, video or other.</summary>
    public static string ToName(this MediaKind kind) => kind switch
    {
        MediaKind.Image => "image",
        MediaKind.Audio => "audio",
        MediaKind.Video => "video",
        _ => "other",
    };
}
