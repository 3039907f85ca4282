using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Makes thumbnails through <see cref="ImageReducer"/> (sharp's way: shrink on load where the format allows, 8-bit
/// Lanczos3, colour and orientation applied to the small image), and libvips' <c>thumbnail</c> for what the reducer
/// does not take. Several sizes of one image come from one decode held in memory
/// (<see cref="ImageReducer.DecodeShared"/>, or the full-size decode <see cref="SharedDecode"/> shares with the optimized
/// copy, box-shrunk first where the sizes' own decodes would have shrunk on load). Outputs are upright, never upscaled,
/// and an animation yields its first frame.
/// </summary>
public static class ImageThumbnailer
{
    /// <summary>Writes one file per spec into <paramref name="outputDirectory"/>, named <c>{name}.{ext}</c> in lower case.</summary>
    /// <exception cref="MediaException">The input is empty, unsupported, corrupt or too large; no output is left behind.</exception>
    public static IReadOnlyList<ThumbnailResult> Generate(
        string inputPath,
        string outputDirectory,
        IReadOnlyList<ThumbnailSpec> specs,
        ImageLimits limits,
        CancellationToken cancellationToken) =>
        Make(inputPath, outputDirectory, specs, limits, cancellationToken).Thumbnails;

    /// <summary><see cref="Generate"/>, also telling how many times the input was decoded to make the set.</summary>
    public static ThumbnailBatch Make(
        string inputPath,
        string outputDirectory,
        IReadOnlyList<ThumbnailSpec> specs,
        ImageLimits limits,
        CancellationToken cancellationToken)
    {
        Validate(specs);
        ArgumentNullException.ThrowIfNull(limits);
        var (source, info) = ImageSource.Prepare(inputPath, limits, cancellationToken);
        return Generate(source, info, decoded: null, outputDirectory, specs, limits, cancellationToken);
    }

    internal static void Validate(IReadOnlyList<ThumbnailSpec> specs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        foreach (var spec in specs)
        {
            spec.Validate();
        }
    }

    /// <summary>
    /// The set from <paramref name="decoded"/> when given (the whole image at full size in memory, shared with other
    /// derivatives by <see cref="SharedDecode"/>, which keeps ownership), otherwise from this call's own decode(s).
    /// </summary>
    internal static ThumbnailBatch Generate(
        ImageSource source,
        ImageInfo info,
        VipsImage? decoded,
        string outputDirectory,
        IReadOnlyList<ThumbnailSpec> specs,
        ImageLimits limits,
        CancellationToken cancellationToken)
    {
        var results = new ThumbnailResult?[specs.Count];
        var decodes = 0;
        VipsImage? ownShared = null;
        try
        {
            VipsImage OpenFile(double shrink)
            {
                Interlocked.Increment(ref decodes);
                return source.Open(sequential: true, allPages: false, limits, cancellationToken, shrink);
            }

            var boxes = specs.Select(s => (s.Width, s.Height, s.Fit)).ToList();
            var flatten = specs.All(s => !OutputFormat(s, info).CanHoldAlpha());
            ownShared = decoded is null
                ? ImageReducer.DecodeShared(info, OpenFile, boxes, flatten, limits, cancellationToken)
                : ImageReducer.ShrinkShared(info, decoded, boxes, flatten, limits, cancellationToken);
            var shared = ownShared ?? decoded;

            // From a decode held in memory the sizes are independent, so they are made side by side (what sharp does
            // with one pipeline per size); streaming from the file, each size decodes on its own, one after another.
            var parallelism = shared is null ? 1 : Math.Min(specs.Count, Environment.ProcessorCount);
            Parallel.For(
                0,
                specs.Count,
                new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
                i => results[i] = MakeOne(source, shared, decoded, info, OpenFile, () => Interlocked.Increment(ref decodes), outputDirectory, specs[i], cancellationToken));
            return new ThumbnailBatch(results.Select(r => r!).ToList(), decodes);
        }
        catch (Exception thrown)
        {
            // All or nothing: a caller that sees an error must not find half of the thumbnails.
            foreach (var done in results)
            {
                if (done is not null)
                {
                    File.Delete(done.Path);
                }
            }

            // Parallel.For wraps what a size threw; the caller expects the error itself.
            var e = thrown is AggregateException { InnerExceptions.Count: > 0 } aggregate ? aggregate.InnerExceptions[0] : thrown;
            if (e is VipsException vips)
            {
                throw ImageErrorCodes.CorruptData("The image cannot be decoded: " + vips.Message, vips);
            }

            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
            throw;
        }
        finally
        {
            ownShared?.Dispose();
        }
    }

    private static ImageOutputFormat OutputFormat(ThumbnailSpec spec, ImageInfo info) => spec.Format switch
    {
        ImageOutputFormat.Auto => info.HasAlpha ? ImageOutputFormat.Webp : ImageOutputFormat.Jpeg,
        _ => spec.Format,
    };

    private static ThumbnailResult MakeOne(
        ImageSource source,
        VipsImage? shared,
        VipsImage? fullDecode,
        ImageInfo info,
        Func<double, VipsImage> openFile,
        Action countFileThumbnail,
        string outputDirectory,
        ThumbnailSpec spec,
        CancellationToken cancellationToken)
    {
        var format = OutputFormat(spec, info);
        var family = format.Family();
        using var output = new OutputFile(Path.Combine(outputDirectory, spec.Name.ToLowerInvariant() + ImageFamilies.Extension(family)));

        var image = ImageReducer.Thumbnail(
            info,
            // A shared decode is shrunk no further than this size allows; the reducer takes it as it is.
            shrink => shared?.Call("copy") ?? openFile(shrink),
            () =>
            {
                // What the reducer leaves to libvips (an image not larger than the box): from a full-size decode in
                // memory its thumbnail_image needs no decode; otherwise thumbnail decodes the file again.
                var crop = spec.Fit == ThumbnailFit.Cover ? "centre" : "none";
                if (fullDecode is not null)
                {
                    return VipsOperation.Run("thumbnail_image", ("in", fullDecode), ("width", spec.Width), ("height", spec.Height), ("size", "down"), ("crop", crop));
                }

                countFileThumbnail();
                return VipsOperation.Run(
                    "thumbnail",
                    ("filename", source.Path),
                    ("width", spec.Width),
                    ("height", spec.Height),
                    ("size", "down"),
                    ("crop", crop),
                    ("fail_on", "error"));
            },
            spec.Width,
            spec.Height,
            spec.Fit,
            flatten: !format.CanHoldAlpha(),
            cancellationToken);
        try
        {
            var (width, height) = (image.Width, image.Height);
            ImagePipeline.Save(image, format, spec.Quality, output.PartialPath, cancellationToken);
            var bytes = output.Commit();
            return new ThumbnailResult(spec.Name, output.FinalPath, width, height, ImageFamilies.ContentType(family), bytes);
        }
        finally
        {
            image.Dispose();
        }
    }
}
