namespace Kiln.Media.Images;

/// <summary>
/// Limits checked from the header, before any pixel is decoded, so a small file that claims a huge canvas
/// (a decompression bomb) is refused without costing memory or time.
/// </summary>
public sealed record ImageLimits
{
    public static ImageLimits Default { get; } = new();

    /// <summary>Pixels of one frame (stored width x height). 100 megapixels by default.</summary>
    public long MaxPixels { get; init; } = 100_000_000;

    /// <summary>Frames of an animation that are decoded together (all frames x frame size must fit MaxTotalPixels too).</summary>
    public int MaxFrames { get; init; } = 1000;

    /// <summary>Pixels of all decoded frames together, for animations loaded whole.</summary>
    public long MaxTotalPixels { get; init; } = 400_000_000;

    /// <summary>
    /// Largest decoded image (pixels, after shrink-on-load) kept in memory so that several sizes of one image are made
    /// from one decode; larger images are decoded once per size, streaming. 40 megapixels (~120 MB as RGB) by default.
    /// </summary>
    public long SharedDecodeMaxPixels { get; init; } = 40_000_000;

    /// <summary>
    /// Decode non-interlaced 8/16-bit PNGs read top to bottom with Kiln's managed decoder (.NET's zlib-ng) instead of
    /// libvips' libpng; same pixels, about half the CPU. True by default; false keeps libvips' decoder for every PNG.
    /// </summary>
    public bool ManagedPngDecoder { get; init; } = true;

    /// <summary>Refuses an image whose frame is over <see cref="MaxPixels"/>, from its probed header.</summary>
    /// <exception cref="MediaException"><c>image.too_large</c>.</exception>
    public void EnsureWithin(ImageInfo info) => ImageSource.EnsureWithin(info, this);
}
