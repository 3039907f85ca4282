using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Reduction of the most common input, a plain JPEG (8-bit sRGB, no EXIF rotation, alpha or ICC profile), the way
/// sharp does it: decode already shrunk by libjpeg's DCT scaling, by the largest power of two that keeps the image
/// at or above the target, then one Lanczos3 pass to the exact size.
/// </summary>
/// <remarks>
/// libvips' <c>thumbnail</c> also shrinks on load but keeps a factor of two for its final pass, so it decodes up
/// to four times as many pixels, and libvips 8.14's horizontal Lanczos3 (<c>reduceh</c>) is scalar. Everything
/// that is not plain (rotation, alpha, colour profiles, other formats) stays with <c>thumbnail</c>, which handles it.
/// </remarks>
internal static class JpegFastPath
{
    /// <summary>True when the probed image can take this path (an sRGB JPEG is always 8-bit).</summary>
    public static bool Applies(ImageInfo info) =>
        info is { Format: ImageFamilies.Jpeg, Orientation: 1, HasAlpha: false, Bands: 3, Interpretation: "srgb", HasIccProfile: false };

    /// <summary>
    /// Reduces a <paramref name="width"/> x <paramref name="height"/> plain JPEG to exactly
    /// <paramref name="targetWidth"/> x <paramref name="targetHeight"/> (neither larger than the source).
    /// </summary>
    /// <param name="open">Opens the JPEG decoding at 1/n of its size (n = 1, 2, 4 or 8), lazily.</param>
    public static VipsImage Reduce(Func<int, VipsImage> open, int width, int height, int targetWidth, int targetHeight)
    {
        var image = open(JpegShrink(Math.Min((double)width / targetWidth, (double)height / targetHeight)));
        if (image.Width == targetWidth && image.Height == targetHeight)
        {
            return image;
        }

        if (HorizontalLanczos3.CanReduce(image.Width, targetWidth, image.Bands) && VipsRowStage.IsAvailable)
        {
            return ReduceSeparately(image, targetWidth, targetHeight);
        }

        var hscale = (double)targetWidth / image.Width;
        var vscale = (double)targetHeight / image.Height;
        return image.Then(i => i.Call("resize", ("scale", hscale), ("vscale", vscale), ("kernel", "lanczos3")));
    }

    /// <summary>
    /// Lanczos3 in two passes: vertical in libvips (<c>reducev</c>, vectorised there), horizontal in
    /// <see cref="HorizontalLanczos3"/> because libvips 8.14's <c>reduceh</c> is scalar and twice as slow as
    /// everything else in the resize together. The horizontal pass is a stage of the libvips pipeline, so a saver
    /// encodes one strip while the next is decoded and resampled. Takes ownership of <paramref name="image"/>.
    /// </summary>
    private static VipsImage ReduceSeparately(VipsImage image, int targetWidth, int targetHeight)
    {
        if (image.Height != targetHeight)
        {
            image = image.Then(i => i.Call("reducev", ("vshrink", (double)i.Height / targetHeight), ("kernel", "lanczos3")));
        }

        using (image)
        {
            return VipsRowStage.Map(image, targetWidth, HorizontalLanczos3.For(image.Width, targetWidth));
        }
    }

    internal static int JpegShrink(double shrink) => shrink switch
    {
        >= 8 => 8,
        >= 4 => 4,
        >= 2 => 2,
        _ => 1,
    };
}
