namespace Kiln.Media.Images;

/// <summary>The <see cref="MediaException.Code"/> values the image transforms raise.</summary>
public static class ImageErrorCodes
{
    /// <summary>The file is zero bytes long.</summary>
    public const string Empty = "image.empty";

    /// <summary>The bytes are not an image format Kiln accepts (unknown, or a loader that is not allowed).</summary>
    public const string Unsupported = "image.unsupported";

    /// <summary>The header or the pixel data cannot be decoded: truncated, damaged, or not what the header claims.</summary>
    public const string Corrupt = "image.corrupt";

    /// <summary>The image has more pixels or frames than <see cref="ImageLimits"/> allow; refused before decoding.</summary>
    public const string TooLarge = "image.too_large";

    internal static MediaException EmptyFile() => new(Empty, "The image file is empty.");

    internal static MediaException UnsupportedFormat(string why) => new(Unsupported, why);

    internal static MediaException CorruptData(string why, Exception? inner = null) => new(Corrupt, why, false, inner);
}
