namespace Kiln.Media.Images;

/// <summary>Reads what an image is from its header, without decoding pixels.</summary>
public static class ImageProbe
{
    private static readonly ImageLimits Unlimited = new()
    {
        MaxPixels = long.MaxValue,
        MaxFrames = int.MaxValue,
        MaxTotalPixels = long.MaxValue,
    };

    /// <summary>Probes a file. The format comes from the bytes, never from the name.</summary>
    /// <exception cref="MediaException"><c>image.empty</c>, <c>image.unsupported</c> or <c>image.corrupt</c>.</exception>
    public static ImageInfo Read(string path, CancellationToken cancellationToken) =>
        Read(ImageSource.Detect(path), cancellationToken);

    internal static ImageInfo Read(ImageSource source, CancellationToken cancellationToken)
    {
        // Probing reports sizes, it does not refuse them: limits apply when pixels are about to be decoded.
        using var image = source.OpenHeader(Unlimited, cancellationToken);
        return Describe(image, source.Family);
    }

    /// <summary>What an opened image's header says, <paramref name="family"/> being its detected format.</summary>
    internal static ImageInfo Describe(Vips.VipsImage image, string family)
    {
        var orientation = Math.Clamp(image.Orientation, 1, 8);
        var swap = orientation >= 5;
        var width = image.Width;
        var height = image.Height;
        return new ImageInfo(
            Width: swap ? height : width,
            Height: swap ? width : height,
            StoredWidth: width,
            StoredHeight: height,
            Format: family,
            Orientation: orientation,
            HasAlpha: image.HasAlpha,
            Pages: Math.Max(1, image.PageCount),
            Bands: image.Bands,
            Interpretation: image.Interpretation)
        {
            HasIccProfile = image.HasField("icc-profile-data"),
        };
    }
}
