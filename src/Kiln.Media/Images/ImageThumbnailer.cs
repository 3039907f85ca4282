using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Makes thumbnails with libvips' <c>thumbnail</c> operation, which decodes at reduced size where the format
/// allows (JPEG DCT scaling, WebP) instead of decoding every pixel and then shrinking. Outputs are upright
/// (the operation applies the EXIF orientation), never upscaled, and an animation yields its first frame.
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

        var info = ImageProbe.Read(inputPath, cancellationToken);
        ImageSource.EnsureWithin(info, limits);

        var results = new List<ThumbnailResult>(specs.Count);
        try
        {
            foreach (var spec in specs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                results.Add(Make(inputPath, info, outputDirectory, spec, cancellationToken));
            }

            return results;
        }
        catch (Exception e)
        {
            // All or nothing: a caller that sees an error must not find half of the thumbnails.
            foreach (var done in results)
            {
                File.Delete(done.Path);
            }

            if (e is VipsException vips)
            {
                throw ImageErrorCodes.CorruptData("The image cannot be decoded: " + vips.Message, vips);
            }

            throw;
        }
    }

    private static ThumbnailResult Make(string inputPath, ImageInfo info, string outputDirectory, ThumbnailSpec spec, CancellationToken cancellationToken)
    {
        var format = spec.Format switch
        {
            ImageOutputFormat.Auto => info.HasAlpha ? ImageOutputFormat.Webp : ImageOutputFormat.Jpeg,
            _ => spec.Format,
        };
        var family = format.Family();
        using var output = new OutputFile(Path.Combine(outputDirectory, spec.Name.ToLowerInvariant() + ImageFamilies.Extension(family)));

        var image = VipsOperation.Run(
            "thumbnail",
            ("filename", inputPath),
            ("width", spec.Width),
            ("height", spec.Height),
            ("size", "down"),
            ("crop", spec.Fit == ThumbnailFit.Cover ? "centre" : "none"),
            ("fail_on", "error"));
        try
        {
            image = image.Then(ImagePipeline.ToSrgb);
            if (!format.CanHoldAlpha())
            {
                image = image.Then(ImagePipeline.FlattenOnWhite);
            }

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
