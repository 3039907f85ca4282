using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Automatic levels plus a mild sharpen. Levels stretch CIELAB lightness between two percentiles (0.5 % and
/// 99.5 % by default) and leave the colour channels alone, so contrast improves without the colour casts a
/// per-channel RGB stretch introduces; chroma is raised by half as much so colours keep up. The percentiles come from a 512-pixel preview; the correction is then
/// applied to the full image in one streaming pass. Output is upright; alpha is kept where the format holds it.
/// </summary>
public static class ImageEnhancer
{
    private const int PreviewSize = 512;

    /// <summary>Below this lightness range (L units) the image is treated as flat and levels are left alone.</summary>
    private const double MinRange = 5.0;

    public static EnhanceResult Enhance(
        string inputPath,
        string outputPathWithoutExtension,
        EnhanceOptions options,
        ImageLimits limits,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(limits);
        options.Validate();

        var (source, info) = ImageSource.Prepare(inputPath, limits, cancellationToken);
        return ImageSource.Decode(() => Apply(source, info, outputPathWithoutExtension, options, limits, cancellationToken));
    }

    private static EnhanceResult Apply(
        ImageSource source,
        ImageInfo info,
        string outputPathWithoutExtension,
        EnhanceOptions options,
        ImageLimits limits,
        CancellationToken cancellationToken)
    {
        var (black, white) = Levels(source.Path, options, cancellationToken);
        var range = white - black;
        var gain = range < MinRange ? 1.0 : Math.Min(options.MaxGain, 100.0 / range);
        var offset = range < MinRange ? 0.0 : -black * gain;

        // Stretching lightness alone leaves colours looking washed out next to the new contrast (haze lowers both),
        // so chroma gets half of the lightness gain.
        var chroma = 1.0 + ((gain - 1.0) / 2.0);

        var format = options.Format == ImageOutputFormat.Auto
            ? (info.HasAlpha ? ImageOutputFormat.Webp : ImageOutputFormat.Jpeg)
            : options.Format;
        using var output = new OutputFile(outputPathWithoutExtension + ImageFamilies.Extension(format.Family()));

        var image = source.Open(!ImagePipeline.NeedsRandomAccess(info.Orientation), allPages: false, limits, cancellationToken);
        VipsImage? alpha = null;
        try
        {
            image = image.Then(ImagePipeline.ToSrgb).Then(ImagePipeline.Upright);
            var grey = image.Interpretation == "b-w";
            if (image.HasAlpha && format.CanHoldAlpha())
            {
                // Levels and sharpening act on the colour bands; alpha is set aside and joined back unchanged.
                alpha = image.Call("extract_band", ("band", image.Bands - 1));
                image = image.Then(i => i.Call("extract_band", ("band", 0), ("n", i.Bands - 1)));
            }

            image = image.Then(ImagePipeline.FlattenOnWhite)
                .Then(i => i.Call("colourspace", ("space", "lab")))
                .Then(i => i.Call("linear", ("a", new[] { gain, chroma, chroma }), ("b", new[] { offset, 0.0, 0.0 })))
                .Then(i => i.Call("colourspace", ("space", grey ? "b-w" : "srgb")))
                .Then(i => i.Call("cast", ("format", "uchar")));
            if (options.SharpenSigma > 0)
            {
                // Gentle settings: no extra sharpening of flat areas (m1 = 0), a moderate slope on edges, and
                // small halo limits so already-sharp photos do not get bright rims.
                image = image.Then(i => i.Call("sharpen", ("sigma", options.SharpenSigma), ("m1", 0.0), ("m2", 2.0), ("y2", 8.0), ("y3", 12.0)))
                    .Then(ImagePipeline.CastToUchar);
            }

            if (alpha is not null)
            {
                var withAlpha = VipsOperation.Run("bandjoin", ("in", new[] { image, alpha }));
                image.Dispose();
                image = withAlpha;
            }

            var (width, height) = (image.Width, image.Height);
            ImagePipeline.Save(image, format, options.Quality, output.PartialPath, cancellationToken);
            var bytes = output.Commit();
            return new EnhanceResult(
                output.FinalPath, format.Family(), ImageFamilies.ContentType(format.Family()), width, height, bytes,
                black, white, gain);
        }
        finally
        {
            alpha?.Dispose();
            image.Dispose();
        }
    }

    /// <summary>Black and white points as CIELAB lightness, from a small upright preview.</summary>
    private static (double Black, double White) Levels(string path, EnhanceOptions options, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var streamed = VipsOperation.Run(
                "thumbnail", ("filename", path), ("width", PreviewSize), ("height", PreviewSize), ("size", "down"), ("fail_on", "error"))
            .Then(ImagePipeline.ToSrgb)
            .Then(ImagePipeline.FlattenOnWhite)
            .Then(i => i.Call("colourspace", ("space", "lab")))
            .Then(i => i.Call("extract_band", ("band", 0)))

            // percent works on a histogram, so lightness is quantised to 0–255 first (0.4 L units per step).
            .Then(i => i.Call("linear", ("a", new[] { 2.55 }), ("b", new[] { 0.0 }), ("uchar", true)));

        // The preview streams from the file once; both percentiles read it, so it is held in memory (512 px: small).
        using var lightness = streamed.CopyMemory(cancellationToken);
        var black = lightness.Statistic("percent", "threshold", cancellationToken, ("percent", options.LowPercentile)) / 2.55;
        var white = lightness.Statistic("percent", "threshold", cancellationToken, ("percent", options.HighPercentile)) / 2.55;
        return (black, white);
    }
}
