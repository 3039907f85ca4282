namespace Kiln.Media.Images;

/// <summary>The input format families Kiln accepts, and how they map to libvips loaders and MIME types.</summary>
public static class ImageFamilies
{
    public const string Jpeg = "jpeg";
    public const string Png = "png";
    public const string Webp = "webp";
    public const string Gif = "gif";
    public const string Avif = "avif";
    public const string Heif = "heif";
    public const string Tiff = "tiff";

    public static string ContentType(string family) => family switch
    {
        Jpeg => "image/jpeg",
        Png => "image/png",
        Webp => "image/webp",
        Gif => "image/gif",
        Avif => "image/avif",
        Heif => "image/heif",
        Tiff => "image/tiff",
        _ => "application/octet-stream",
    };

    public static string Extension(string family) => family switch
    {
        Jpeg => ".jpg",
        Tiff => ".tif",
        _ => "." + family,
    };

    /// <summary>
    /// Maps a libvips loader class (<c>VipsForeignLoadJpegFile</c>) to its family. Only these loaders are
    /// accepted; anything else libvips could read (matrix, CSV, raw, PPM, …) is refused as unsupported.
    /// </summary>
    internal static string? FromLoader(string loader) => loader switch
    {
        _ when loader.StartsWith("VipsForeignLoadJpeg", StringComparison.Ordinal) => Jpeg,
        _ when loader.StartsWith("VipsForeignLoadPng", StringComparison.Ordinal) => Png,
        _ when loader.StartsWith("VipsForeignLoadWebp", StringComparison.Ordinal) => Webp,
        _ when loader.StartsWith("VipsForeignLoadNsgif", StringComparison.Ordinal) => Gif,
        _ when loader.StartsWith("VipsForeignLoadHeif", StringComparison.Ordinal) => Heif,
        _ when loader.StartsWith("VipsForeignLoadTiff", StringComparison.Ordinal) => Tiff,
        _ => null,
    };
}
