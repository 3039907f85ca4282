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

        var (source, info) = ImageSource.Prepare(inputPath, limits, cancellationToken);

        var results = new List<ThumbnailResult>(specs.Count);
        try
        {
            foreach (var spec in specs)
            {
                cancellationToken.ThrowIfCancellationRequested();
                results.Add(Make(source, info, limits, outputDirectory, spec, cancellationToken));
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

    private static ThumbnailResult Make(
        ImageSource source,
        ImageInfo info,
        ImageLimits limits,
        string outputDirectory,
        ThumbnailSpec spec,
        CancellationToken cancellationToken)
    {
        var format = spec.Format switch
        {
            ImageOutputFormat.Auto => info.HasAlpha ? ImageOutputFormat.Webp : ImageOutputFormat.Jpeg,
            _ => spec.Format,
        };
        var family = format.Family();
        using var output = new OutputFile(Path.Combine(outputDirectory, spec.Name.ToLowerInvariant() + ImageFamilies.Extension(family)));

        var image = (JpegFastPath.Applies(info) ? ReducePlainJpeg(source, info, spec, limits, cancellationToken) : null)
            ?? VipsOperation.Run(
                "thumbnail",
                ("filename", source.Path),
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

    /// <summary>
    /// What <c>thumbnail</c> would make, through <see cref="JpegFastPath"/>: scale to fit inside (or to cover and
    /// then crop the centre of) the box. Null when the image is not larger than the box, which <c>thumbnail</c> handles.
    /// </summary>
    private static VipsImage? ReducePlainJpeg(ImageSource source, ImageInfo info, ThumbnailSpec spec, ImageLimits limits, CancellationToken cancellationToken)
    {
        var (width, height) = (info.StoredWidth, info.StoredHeight);
        var (scaleX, scaleY) = ((double)spec.Width / width, (double)spec.Height / height);
        var scale = spec.Fit == ThumbnailFit.Cover ? Math.Max(scaleX, scaleY) : Math.Min(scaleX, scaleY);
        if (scale >= 1.0)
        {
            return null;
        }

        var targetWidth = Math.Max(1, (int)Math.Round(width * scale));
        var targetHeight = Math.Max(1, (int)Math.Round(height * scale));
        var image = JpegFastPath.Reduce(
            shrink => source.Open(sequential: true, allPages: false, limits, cancellationToken, shrink),
            width,
            height,
            targetWidth,
            targetHeight);
        if (spec.Fit != ThumbnailFit.Cover || (targetWidth <= spec.Width && targetHeight <= spec.Height))
        {
            return image;
        }

        var (cropWidth, cropHeight) = (Math.Min(spec.Width, targetWidth), Math.Min(spec.Height, targetHeight));
        return image.Then(i => VipsOperation.Run(
            "extract_area",
            ("input", i),
            ("left", (targetWidth - cropWidth) / 2),
            ("top", (targetHeight - cropHeight) / 2),
            ("width", cropWidth),
            ("height", cropHeight)));
    }
}
