namespace Kiln.Media;

/// <summary>What an asset is, detected from its bytes (never from its name or the client's MIME type).</summary>
public enum MediaKind
{
    Other = 0,
    Image,
    Audio,
    Video,
}
