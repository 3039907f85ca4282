using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Re-encodes an image smaller: orientation applied, colour brought to sRGB, metadata stripped, optionally scaled
/// down, alpha kept where the format holds it. Pure: one file in, one file out.
/// </summary>
public static class ImageOptimizer
{
    public static OptimizeResult Optimize(
        string inputPath,
        string outputPathWithoutExtension,
        OptimizeOptions options,
        ImageLimits limits,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(limits);
        options.Validate();

        var (source, info) = ImageSource.Prepare(inputPath, limits, cancellationToken);
        var photoDecodes = 0;
        var result = ImageSource.Decode(() => Encode(
            source,
            info,
            allPages => source.Open(sequential: !ImagePipeline.NeedsRandomAccess(info.Orientation), allPages, limits, cancellationToken),
            () =>
            {
                photoDecodes++;
                return PhotoDetector.LooksLikePhoto(inputPath, cancellationToken);
            },
            outputPathWithoutExtension,
            options,
            cancellationToken));
        return result with { Decodes = 1 + photoDecodes };
    }

    /// <summary>
    /// The re-encode from an image that <paramref name="open"/> hands over (the caller's to give, the encode's to
    /// dispose): the file streamed, or a decode already held in memory that other derivatives share
    /// (<see cref="SharedDecode"/>). The argument of <paramref name="open"/> asks for every frame of an animation;
    /// <paramref name="looksLikePhoto"/> runs only when <c>auto</c> must choose between WebP and PNG.
    /// </summary>
    internal static OptimizeResult Encode(
        ImageSource source,
        ImageInfo info,
        Func<bool, VipsImage> open,
        Func<bool> looksLikePhoto,
        string outputPathWithoutExtension,
        OptimizeOptions options,
        CancellationToken cancellationToken)
    {
        var inputPath = source.Path;
        var animated = info.IsAnimated && options.Format is ImageOutputFormat.Auto or ImageOutputFormat.Webp;
        var format = options.Format == ImageOutputFormat.Auto
            ? ResolveAuto(info, looksLikePhoto)
            : options.Format;

        var pages = animated ? info.Pages : 1;
        var scale = Scale(info.Width, info.Height, options.MaxWidth, options.MaxHeight);
        using var output = new OutputFile(outputPathWithoutExtension + ImageFamilies.Extension(format.Family()));

        int width, height;
        var image = open(animated);
        try
        {
            image = image.Then(ImagePipeline.ToSrgb);
            if (!animated)
            {
                image = image.Then(ImagePipeline.Upright);
            }

            image = image.Then(i => ImagePipeline.Resize(i, scale, pages));
            if (!format.CanHoldAlpha())
            {
                image = image.Then(ImagePipeline.FlattenOnWhite);
            }

            (width, height) = ImagePipeline.FrameSize(image, pages);
            cancellationToken.ThrowIfCancellationRequested();
            ImagePipeline.Save(image, format, options.Quality, output.PartialPath, cancellationToken);
        }
        finally
        {
            image.Dispose();
        }

        if (output.PartialLength >= source.Bytes && CanKeepOriginal(info, options, scale))
        {
            using var original = new OutputFile(outputPathWithoutExtension + ImageFamilies.Extension(info.Format));
            var kept = original.CommitCopyOf(inputPath);
            return new OptimizeResult(
                original.FinalPath, info.Format, ImageFamilies.ContentType(info.Format), info.Width, info.Height,
                info.Pages, source.Bytes, kept, KeptOriginal: true);
        }

        var bytes = output.Commit();
        return new OptimizeResult(
            output.FinalPath, format.Family(), ImageFamilies.ContentType(format.Family()), width, height,
            pages, source.Bytes, bytes, KeptOriginal: false);
    }

    /// <summary>
    /// The <c>auto</c> rule: an animation becomes an animated WebP; JPEG, WebP and AVIF keep their family;
    /// HEIF (which browsers cannot show) becomes WebP; lossless inputs (PNG, TIFF, still GIF) become WebP when they
    /// look like a photo and PNG when they look like a graphic (few colours, where lossless PNG is small and exact).
    /// </summary>
    internal static ImageOutputFormat ResolveAuto(ImageInfo info, Func<bool> looksLikePhoto) => info.Format switch
    {
        _ when info.IsAnimated => ImageOutputFormat.Webp,
        ImageFamilies.Jpeg => ImageOutputFormat.Jpeg,
        ImageFamilies.Webp => ImageOutputFormat.Webp,
        ImageFamilies.Avif => ImageOutputFormat.Avif,
        ImageFamilies.Heif => ImageOutputFormat.Webp,
        _ => looksLikePhoto() ? ImageOutputFormat.Webp : ImageOutputFormat.Png,
    };

    /// <summary>Scale that fits the upright size inside the maximum box; 1 when it already fits (never upscales).</summary>
    internal static double Scale(int width, int height, int? maxWidth, int? maxHeight)
    {
        var scale = 1.0;
        if (maxWidth is { } w && width > w)
        {
            scale = Math.Min(scale, (double)w / width);
        }

        if (maxHeight is { } h && height > h)
        {
            scale = Math.Min(scale, (double)h / height);
        }

        return scale;
    }

    /// <summary>
    /// The original is served instead of a larger re-encode only when it is already what was asked for: not
    /// resized, already upright, in the requested family (or auto), and in a format browsers show.
    /// </summary>
    private static bool CanKeepOriginal(ImageInfo info, OptimizeOptions options, double scale) =>
        scale >= 1.0
        && info.Orientation == 1
        && info.Format is ImageFamilies.Jpeg or ImageFamilies.Png or ImageFamilies.Webp or ImageFamilies.Gif or ImageFamilies.Avif
        && (options.Format == ImageOutputFormat.Auto || options.Format.Family() == info.Format);
}
