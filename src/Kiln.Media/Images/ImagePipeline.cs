using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Pipeline steps shared by the transforms. Each step takes ownership of its input and returns the next image;
/// disposing an intermediate early is safe because every libvips image holds references to what it reads from.
/// </summary>
internal static class ImagePipeline
{
    private static readonly double[] White = [255.0, 255.0, 255.0];

    /// <summary>Applies <paramref name="step"/> and disposes the input unless the step returned it unchanged.</summary>
    public static VipsImage Then(this VipsImage image, Func<VipsImage, VipsImage> step)
    {
        VipsImage next;
        try
        {
            next = step(image);
        }
        catch
        {
            image.Dispose();
            throw;
        }

        if (!ReferenceEquals(next, image))
        {
            image.Dispose();
        }

        return next;
    }

    /// <summary>True when applying the orientation needs rows out of order (anything but identity or a mirror).</summary>
    public static bool NeedsRandomAccess(int orientation) => orientation > 2;

    /// <summary>Rotates/flips the pixels as the EXIF orientation says and drops the tag.</summary>
    public static VipsImage Upright(VipsImage image) =>
        image.Orientation > 1 ? image.Call("autorot") : image;

    /// <summary>
    /// Brings colour to 8-bit sRGB (or 8-bit grey) so that stripping metadata, including the ICC profile, does not
    /// change how the pixels look: an embedded profile is applied first, CMYK and 16-bit data are converted.
    /// </summary>
    public static VipsImage ToSrgb(VipsImage image)
    {
        if (image.HasField("icc-profile-data"))
        {
            return image.Call("icc_transform", ("output_profile", "srgb"), ("embedded", true), ("intent", "relative"));
        }

        return image.Interpretation switch
        {
            "srgb" or "b-w" when image.Format == 0 => image,
            "b-w" or "grey16" => image.Call("colourspace", ("space", "b-w")).Then(CastToUchar),
            _ => image.Call("colourspace", ("space", "srgb")).Then(CastToUchar),
        };
    }

    public static VipsImage CastToUchar(VipsImage image) => image.Format == 0 ? image : image.Call("cast", ("format", "uchar"));

    /// <summary>
    /// Composes alpha over white: JPEG has no alpha, and black (what dropping alpha shows) looks broken. 8-bit RGBA
    /// goes through <see cref="FlattenRgbaOnWhite"/> (integer, several times faster than libvips' float flatten).
    /// </summary>
    public static VipsImage FlattenOnWhite(VipsImage image)
    {
        if (!image.HasAlpha)
        {
            return image;
        }

        if (image is { Bands: 4, Format: 0 } && VipsRowStage.IsAvailable)
        {
            return VipsRowStage.Map(image, image.Width, new FlattenRgbaOnWhite(image.Width), outputBands: 3);
        }

        return image.Call("flatten", ("background", White)).Then(CastToUchar);
    }

    /// <summary>
    /// Lanczos3 resize by <paramref name="scale"/>. With alpha the colour is premultiplied first so transparent
    /// pixels do not bleed their (invisible) colour into the edges. An animation (a strip of
    /// <paramref name="pages"/> frames) is scaled so every frame gets the same whole-pixel height.
    /// </summary>
    public static VipsImage Resize(VipsImage image, double scale, int pages)
    {
        if (scale >= 1.0)
        {
            return image;
        }

        var pageHeight = image.Height / pages;
        var newPageHeight = Math.Max(1, (int)Math.Round(pageHeight * scale));
        var vscale = (double)newPageHeight / pageHeight;
        var alpha = image.HasAlpha;
        var resized = (alpha ? image.Call("premultiply") : image)
            .Then(i => i.Call("resize", ("scale", scale), ("vscale", vscale), ("kernel", "lanczos3")));
        if (alpha)
        {
            resized = resized.Then(i => i.Call("unpremultiply")).Then(i => i.Call("cast", ("format", "uchar")));
        }

        return pages > 1 ? resized.Then(i => i.CopyWithInt("page-height", newPageHeight)) : resized;
    }

    /// <summary>Encodes to a file with metadata stripped. Animations keep their frames in WebP (and PNG/JPEG get the first).</summary>
    public static void Save(VipsImage image, ImageOutputFormat format, int quality, string path, CancellationToken cancellationToken)
    {
        switch (format)
        {
            case ImageOutputFormat.Jpeg:
                // optimize_coding: a second Huffman pass costs little and saves a few percent.
                image.Save("jpegsave", path, cancellationToken, ("Q", quality), ("strip", true), ("optimize_coding", true));
                break;
            case ImageOutputFormat.Webp:
                image.Save("webpsave", path, cancellationToken, ("Q", quality), ("strip", true), ("effort", 4));
                break;
            case ImageOutputFormat.Avif:
                // libvips 8.14 defaults heifsave to HEVC and 12 bits; AVIF in browsers means AV1, 8 bits is enough for 8-bit input.
                image.Save("heifsave", path, cancellationToken, ("Q", quality), ("compression", "av1"), ("bitdepth", 8), ("strip", true), ("effort", 4));
                break;
            case ImageOutputFormat.Png:
                image.Save("pngsave", path, cancellationToken, ("compression", 9), ("strip", true));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Resolve Auto before saving.");
        }
    }

    /// <summary>Output width and height of one frame.</summary>
    public static (int Width, int Height) FrameSize(VipsImage image, int pages) => (image.Width, image.Height / Math.Max(1, pages));
}
