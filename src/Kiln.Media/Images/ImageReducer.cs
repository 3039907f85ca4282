using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Reduces an image to fit inside (or cover) a box the way sharp does, for every still input Kiln decodes itself
/// (JPEG, PNG, WebP, TIFF, GIF; 8 or 16 bits; grey or RGB; with or without alpha, EXIF orientation or an ICC
/// profile): the one path behind thumbnails and in-memory resizes. The result is upright 8-bit sRGB (or grey).
/// </summary>
/// <remarks>
/// Why not libvips' own <c>thumbnail</c>: in 8.14 it keeps a factor of two for its final pass (so it decodes up to
/// four times the pixels), premultiplies alpha into float and resamples in float, converts colour at full size, and
/// its horizontal Lanczos3 (<c>reduceh</c>) is scalar. This path does what sharp does on top of the same libvips:
/// <list type="number">
/// <item>shrink on load, decoding sequentially: a JPEG by the largest power of two that keeps it at or above the
/// target (DCT scaling), a WebP straight to the target size (libwebp's scaled decode, libvips' thumbnail's way);</item>
/// <item>16-bit data is shifted to 8 bits first, so every later stage runs on bytes;</item>
/// <item>alpha bound for a format without it is flattened onto white before resampling (flattening is linear, so
/// this equals premultiply → resample → unpremultiply → flatten, in bytes instead of floats); alpha that is kept
/// is premultiplied around the resample;</item>
/// <item>a box shrink for what is left above 2x, then Lanczos3: vertical in <see cref="VerticalLanczos3"/>,
/// horizontal in <see cref="HorizontalLanczos3"/>, both pipeline stages;</item>
/// <item>the ICC profile is applied, and the EXIF orientation, after the resample, on the small image.</item>
/// </list>
/// Animations, CMYK and other colour spaces, HEIF/AVIF and upscales return null: <c>thumbnail</c> handles those.
/// </remarks>
internal static class ImageReducer
{
    private const int BandFormatUchar = 0;
    private const int BandFormatUshort = 2;

    /// <summary>True when the probed image can take this path; other images go through libvips' <c>thumbnail</c>.</summary>
    public static bool Applies(ImageInfo info) =>
        info.Format is ImageFamilies.Jpeg or ImageFamilies.Png or ImageFamilies.Webp or ImageFamilies.Tiff or ImageFamilies.Gif
        && !info.IsAnimated
        && info.Interpretation is "srgb" or "b-w" or "rgb16" or "grey16"
        && (info.Bands - (info.HasAlpha ? 1 : 0)) is 1 or 3;

    /// <summary>True for the families whose decoders can shrink while decoding.</summary>
    public static bool ShrinksOnLoad(string family) => family is ImageFamilies.Jpeg or ImageFamilies.Webp;

    /// <summary>
    /// The image scaled to fit inside (or to cover and then be cropped to) the box, or the whole libvips
    /// <c>thumbnail</c> path through <paramref name="fallback"/> when <see cref="Applies"/> is false or the image is
    /// not larger than the box. The result is upright 8-bit sRGB or grey, alpha flattened onto white when
    /// <paramref name="flatten"/>.
    /// </summary>
    /// <param name="open">Opens the first frame sequentially, decoded at 1/n of its size (a JPEG: n = 1, 2, 4 or 8; a WebP: any n ≥ 1).</param>
    /// <param name="fallback">libvips' <c>thumbnail</c> of the same input and box.</param>
    public static VipsImage Thumbnail(
        ImageInfo info,
        Func<double, VipsImage> open,
        Func<VipsImage> fallback,
        int boxWidth,
        int boxHeight,
        ThumbnailFit fit,
        bool flatten,
        CancellationToken cancellationToken)
    {
        var image = (Applies(info) ? Reduce(info, open, boxWidth, boxHeight, fit, flatten, cancellationToken) : null)
            ?? fallback().Then(ImagePipeline.ToSrgb);
        return flatten ? image.Then(ImagePipeline.FlattenOnWhite) : image;
    }

    /// <summary>The reduction itself; null when the image is not larger than the box or its pixels are not 8/16-bit.</summary>
    internal static VipsImage? Reduce(
        ImageInfo info,
        Func<double, VipsImage> open,
        int boxWidth,
        int boxHeight,
        ThumbnailFit fit,
        bool flatten,
        CancellationToken cancellationToken)
    {
        if (Target(info, boxWidth, boxHeight, fit) is not (var storedWidth, var storedHeight, var shrink))
        {
            return null;
        }

        var image = open(shrink);
        if (shrink > 1 && (image.Width < storedWidth || image.Height < storedHeight))
        {
            // A decoder that rounds its scaled size down: decode at full size rather than upscale.
            image.Dispose();
            image = open(1);
        }

        if (image.Format is not (BandFormatUchar or BandFormatUshort))
        {
            image.Dispose();
            return null;
        }

        try
        {
            image = image.Then(To8Bit);
            var alpha = image.HasAlpha;
            if (alpha && flatten)
            {
                image = image.Then(ImagePipeline.FlattenOnWhite);
            }

            if (alpha && !flatten)
            {
                image = image.Then(i => i.Call("premultiply"))
                    .Then(i => Resample(i, storedWidth, storedHeight))
                    .Then(i => i.Call("unpremultiply"))
                    .Then(ImagePipeline.CastToUchar);
            }
            else
            {
                image = image.Then(i => Resample(i, storedWidth, storedHeight));
            }

            if (image.HasField("icc-profile-data"))
            {
                image = image.Then(ImagePipeline.ToSrgb);
            }

            image = image.Then(i => Upright(i, cancellationToken));
            return fit == ThumbnailFit.Cover ? image.Then(i => CropCentre(i, boxWidth, boxHeight)) : image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The size to resample to, in the stored orientation, and the shrink-on-load factor for it; null when the
    /// image is not larger than the box (nothing to reduce).
    /// </summary>
    internal static (int Width, int Height, double Shrink)? Target(ImageInfo info, int boxWidth, int boxHeight, ThumbnailFit fit)
    {
        var (scaleX, scaleY) = ((double)boxWidth / info.Width, (double)boxHeight / info.Height);
        var scale = fit == ThumbnailFit.Cover ? Math.Max(scaleX, scaleY) : Math.Min(scaleX, scaleY);
        if (scale >= 1.0)
        {
            return null;
        }

        // Sizes upright, then in the stored orientation, where the resampling happens.
        var width = Math.Max(1, (int)Math.Round(info.Width * scale));
        var height = Math.Max(1, (int)Math.Round(info.Height * scale));
        var (storedWidth, storedHeight) = info.Orientation >= 5 ? (height, width) : (width, height);
        var ratio = Math.Min((double)info.StoredWidth / storedWidth, (double)info.StoredHeight / storedHeight);
        var shrink = info.Format switch
        {
            ImageFamilies.Jpeg => LoadShrink(ratio),
            // libwebp scales while it decodes, by any factor: straight to the target size, as libvips' thumbnail
            // does (sharp's path), instead of to a power of two and a Lanczos pass over 2-4x the pixels after it.
            // A hair under the ratio, so the decoder's rounding never lands a pixel short of the target.
            ImageFamilies.Webp => Math.Max(1.0, ratio * (1 - 1e-6)),
            _ => 1.0,
        };
        return (storedWidth, storedHeight, shrink);
    }

    /// <summary>
    /// Decodes once, into memory, what every one of several reductions can start from: shrunk on load by the
    /// smallest factor any of them takes, 8-bit, alpha flattened when <paramref name="flatten"/>. Null when one
    /// reduction would not share it (not <see cref="Applies"/>, nothing to reduce, only one size) or it would exceed
    /// <see cref="ImageLimits.SharedDecodeMaxPixels"/>; each size then decodes on its own, streaming.
    /// </summary>
    /// <remarks>
    /// Why: a PNG or TIFF cannot shrink on load, so three thumbnails decoded three times cost three full inflates;
    /// even a JPEG pays the Huffman decoding once per size. Reading a decoded image from memory costs next to nothing.
    /// </remarks>
    internal static VipsImage? DecodeShared(
        ImageInfo info,
        Func<double, VipsImage> open,
        IReadOnlyList<(int Width, int Height, ThumbnailFit Fit)> boxes,
        bool flatten,
        ImageLimits limits,
        CancellationToken cancellationToken,
        int minimumShrink = 1)
    {
        if (boxes.Count < 2 || !Applies(info))
        {
            return null;
        }

        // Sizes the image is not larger than are made by libvips' thumbnail, from the file.
        var (shrink, reductions) = (8.0, 0);
        foreach (var (width, height, fit) in boxes)
        {
            if (Target(info, width, height, fit) is (_, _, var s))
            {
                (shrink, reductions) = (Math.Min(shrink, s), reductions + 1);
            }
        }

        if (reductions < 2 || shrink < minimumShrink || (long)(info.StoredWidth / shrink * (info.StoredHeight / shrink)) > limits.SharedDecodeMaxPixels)
        {
            return null;
        }

        var image = open(shrink);
        if (image.Format is not (BandFormatUchar or BandFormatUshort))
        {
            image.Dispose();
            return null;
        }

        image = image.Then(To8Bit);
        if (flatten)
        {
            image = image.Then(ImagePipeline.FlattenOnWhite);
        }

        return image.Then(i => i.CopyMemory(cancellationToken));
    }

    /// <summary>
    /// <see cref="DecodeShared"/> from a full-size decode already in memory (<see cref="SharedDecode"/>): box-shrunk by
    /// the factor the sizes' own decodes would have shrunk on load (JPEG DCT scaling, WebP), into memory; null when that
    /// factor is 1 (PNG, TIFF, GIF, or a size close to the original), and the sizes then read the full-size decode.
    /// </summary>
    /// <remarks>
    /// Why: reducing 2725x2225 to 1323x1080 with Lanczos3 straight from full size costs more than libjpeg's 1/2 decode
    /// saves (a shared decode measured 1.10x the CPU of two decodes); a 2x2 box average of the pixels in memory is what
    /// the DCT-scaled decode approximates, at a fraction of a decode's cost, so sharing pays for JPEG too.
    /// </remarks>
    internal static VipsImage? ShrinkShared(
        ImageInfo info,
        VipsImage fullDecode,
        IReadOnlyList<(int Width, int Height, ThumbnailFit Fit)> boxes,
        bool flatten,
        ImageLimits limits,
        CancellationToken cancellationToken) =>
        DecodeShared(
            info,
            // A WebP's factor is the exact ratio (its decoder scales by any factor); the box takes its whole part,
            // and the Lanczos pass after it the rest.
            shrink => Box(fullDecode, (int)shrink),
            boxes,
            flatten,
            limits,
            cancellationToken,
            minimumShrink: 2);

    /// <summary>The image averaged over blocks of <paramref name="factor"/> x <paramref name="factor"/> pixels.</summary>
    private static VipsImage Box(VipsImage image, int factor) =>
        image.Format == BandFormatUchar && factor <= BoxShrink.MaxFactor && VipsRowStage.IsAvailable
            ? VipsRowStage.Map(image, image.Width / factor, new BoxShrink(factor, image.Width / factor, image.Bands), verticalFactor: factor)
            : image.Call("shrink", ("hshrink", (double)factor), ("vshrink", (double)factor));

    /// <summary>The largest power of two (up to 8, what libjpeg can) not above <paramref name="ratio"/>.</summary>
    internal static int LoadShrink(double ratio) => ratio switch
    {
        >= 8 => 8,
        >= 4 => 4,
        >= 2 => 2,
        _ => 1,
    };

    /// <summary>
    /// 16-bit samples keep their top byte (what a conversion to 8-bit sRGB does, without the float round trip).
    /// </summary>
    private static VipsImage To8Bit(VipsImage image)
    {
        if (image.Format == BandFormatUchar)
        {
            return image;
        }

        var interpretation = image.Interpretation is "grey16" or "b-w" ? "b-w" : "srgb";
        return image.Call("cast", ("format", "uchar"), ("shift", true))
            .Then(i => i.Call("copy", ("interpretation", interpretation)));
    }

    /// <summary>
    /// Lanczos3 to exactly <paramref name="width"/> x <paramref name="height"/> (both at most the input's). Above 2x,
    /// a box shrink by a whole factor goes first (what libvips' <c>resize</c> does with its default gap of 2): the
    /// Lanczos window grows with the ratio, and a box average loses nothing that a 2x Lanczos pass would keep.
    /// </summary>
    private static VipsImage Resample(VipsImage image, int width, int height)
    {
        var box = (int)Math.Floor(Math.Min((double)image.Width / width, (double)image.Height / height) / 2);
        if (box >= 2)
        {
            image = image.Then(i => Box(i, box));
        }

        if (image.Height != height)
        {
            image = image.Format == BandFormatUchar && VipsRowStage.IsAvailable
                ? image.Then(i => VipsWindowStage.Map(i, height, VerticalLanczos3.For(i.Height, height)))
                : image.Then(i => i.Call("reducev", ("vshrink", (double)i.Height / height), ("kernel", "lanczos3")));
        }

        if (image.Width == width)
        {
            return image;
        }

        if (image.Format == BandFormatUchar && HorizontalLanczos3.CanReduce(image.Width, width, image.Bands) && VipsRowStage.IsAvailable)
        {
            using (image)
            {
                return VipsRowStage.Map(image, width, HorizontalLanczos3.For(image.Width, width));
            }
        }

        return image.Then(i => i.Call("reduceh", ("hshrink", (double)i.Width / width), ("kernel", "lanczos3")));
    }

    /// <summary>
    /// Applies the EXIF orientation to the reduced image. A rotation reads rows out of order, which a sequential
    /// decode cannot serve, so the (small) reduced image is computed into memory first, as sharp does.
    /// </summary>
    private static VipsImage Upright(VipsImage image, CancellationToken cancellationToken)
    {
        if (image.Orientation <= 1)
        {
            return image;
        }

        if (ImagePipeline.NeedsRandomAccess(image.Orientation))
        {
            image = image.Then(i => i.CopyMemory(cancellationToken));
        }

        return image.Then(ImagePipeline.Upright);
    }

    private static VipsImage CropCentre(VipsImage image, int boxWidth, int boxHeight)
    {
        var (width, height) = (Math.Min(boxWidth, image.Width), Math.Min(boxHeight, image.Height));
        if ((width, height) == (image.Width, image.Height))
        {
            return image;
        }

        return VipsOperation.Run(
            "extract_area",
            ("input", image),
            ("left", (image.Width - width) / 2),
            ("top", (image.Height - height) / 2),
            ("width", width),
            ("height", height));
    }
}
