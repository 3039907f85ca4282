using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Makes thumbnails through <see cref="ImageReducer"/> (sharp's way: shrink on load where the format allows, 8-bit
/// Lanczos3, colour and orientation applied to the small image), and libvips' <c>thumbnail</c> for what the reducer
/// does not take. Several sizes of one image come from one decode held in memory
/// (<see cref="ImageReducer.DecodeShared"/>). Outputs are upright, never upscaled, and an animation yields its first frame.
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
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(limits);
        foreach (var spec in specs)
        {
            spec.Validate();
        }

        var (source, info) = ImageSource.Prepare(inputPath, limits, cancellationToken);

        var results = new ThumbnailResult?[specs.Count];
        VipsImage? shared = null;
        try
        {
            shared = ImageReducer.DecodeShared(
                info,
                shrink => source.Open(sequential: true, allPages: false, limits, cancellationToken, shrink),
                specs.Select(s => (s.Width, s.Height, s.Fit)).ToList(),
                flatten: specs.All(s => !OutputFormat(s, info).CanHoldAlpha()),
                limits,
                cancellationToken);

            // From a decode held in memory the sizes are independent, so they are made side by side (what sharp does
            // with one pipeline per size); streaming from the file, each size decodes on its own, one after another.
            var parallelism = shared is null ? 1 : Math.Min(specs.Count, Environment.ProcessorCount);
            Parallel.For(
                0,
                specs.Count,
                new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
                i => results[i] = Make(source, shared, info, limits, outputDirectory, specs[i], cancellationToken));
            return results.Select(r => r!).ToList();
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
            shared?.Dispose();
        }
    }

    private static ImageOutputFormat OutputFormat(ThumbnailSpec spec, ImageInfo info) => spec.Format switch
    {
        ImageOutputFormat.Auto => info.HasAlpha ? ImageOutputFormat.Webp : ImageOutputFormat.Jpeg,
        _ => spec.Format,
    };

    private static ThumbnailResult Make(
        ImageSource source,
        VipsImage? shared,
        ImageInfo info,
        ImageLimits limits,
        string outputDirectory,
        ThumbnailSpec spec,
        CancellationToken cancellationToken)
    {
        var format = OutputFormat(spec, info);
        var family = format.Family();
        using var output = new OutputFile(Path.Combine(outputDirectory, spec.Name.ToLowerInvariant() + ImageFamilies.Extension(family)));

        var image = ImageReducer.Thumbnail(
            info,
            // The shared decode is already shrunk as far as this size allows; the reducer takes it as it is.
            shrink => shared?.Call("copy") ?? source.Open(sequential: true, allPages: false, limits, cancellationToken, shrink),
            () => VipsOperation.Run(
                "thumbnail",
                ("filename", source.Path),
                ("width", spec.Width),
                ("height", spec.Height),
                ("size", "down"),
                ("crop", spec.Fit == ThumbnailFit.Cover ? "centre" : "none"),
                ("fail_on", "error")),
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
