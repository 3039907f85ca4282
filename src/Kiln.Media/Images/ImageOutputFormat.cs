namespace Kiln.Media.Images;

/// <summary>An encoded output format. <see cref="Auto"/> lets the transform choose (see docs/images.md).</summary>
public enum ImageOutputFormat
{
    Auto = 0,
    Jpeg,
    Webp,
    Avif,
    Png,
}

internal static class ImageOutputFormats
{
    public static string Family(this ImageOutputFormat format) => format switch
    {
        ImageOutputFormat.Jpeg => ImageFamilies.Jpeg,
        ImageOutputFormat.Webp => ImageFamilies.Webp,
        ImageOutputFormat.Avif => ImageFamilies.Avif,
        ImageOutputFormat.Png => ImageFamilies.Png,
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "Auto has no family until it is resolved."),
    };

    public static bool CanHoldAlpha(this ImageOutputFormat format) => format != ImageOutputFormat.Jpeg;
}
