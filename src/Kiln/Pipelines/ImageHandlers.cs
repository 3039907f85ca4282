using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.Jobs;
using Kiln.Media.Images;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Storage;

namespace Kiln.Pipelines;

/// <summary>
/// <c>image.thumbnails</c>: THUMBNAIL 150x150 cover, MEDIUM 800x600 inside, LARGE 1920x1080 inside (JPEG Q80),
/// never upscaled, upright. Params may replace the set: <c>{"sizes": [{"name": "SQUARE", "width": 300,
/// "height": 300, "fit": "cover", "format": "webp", "quality": 75}]}</c>.
/// </summary>
internal sealed partial class ImageThumbnailsHandler(VipsReady vips, KilnMetrics metrics, SharedImageDerivatives? shared = null) : IJobHandler
{
    public string Kind => ImagePipeline.Thumbnails;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var specs = context.ReadParams(ReadParams);
        context.Progress.Report(new JobProgress(5, "thumbnails", TotalBytes: context.InputBytes));
        using var memory = vips.JobMemory();
        var (outcome, decodes) = await ImageOutcomes.SharedOrAloneAsync(shared, context, () =>
        {
            var batch = ImageThumbnailer.Make(context.RequireInput(), context.OutputDirectory, specs, vips.Limits, cancellationToken);
            return (ImageOutcomes.Thumbnails(batch.Thumbnails), batch.Decodes);
        }, cancellationToken);

        ImageOutcomes.Decoded(metrics, Kind, decodes);
        return outcome;
    }

    private static readonly string[] Fits = ["cover", "inside"];

    /// <summary>The sizes to make: the defaults, or the <c>sizes</c> param (1–10, unique names).</summary>
    public static IReadOnlyList<ThumbnailSpec> ReadParams(JobParams p)
    {
        var specs = p.Objects("sizes", 1, 10, size =>
        {
            var name = size.RequiredText("name", SizeName(), "1–32 letters, digits, '-' or '_'");
            return new ThumbnailSpec(
                name.ToUpperInvariant(),
                size.RequiredInt("width", 1, 10_000),
                size.RequiredInt("height", 1, 10_000),
                size.OneOf("fit", Fits, "inside") == "cover" ? ThumbnailFit.Cover : ThumbnailFit.Inside,
                ImageFormats.Parse(size.OneOf("format", ImageFormats.Encoded, "jpeg")),
                size.Int("quality", 1, 100, 80));
        });
        if (specs is null)
        {
            return ThumbnailSpec.Defaults;
        }

        if (specs.Select(s => s.Name).Distinct(StringComparer.Ordinal).Count() != specs.Count)
        {
            throw p.Invalid("sizes", "must have unique names");
        }

        return specs;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,32}$", RegexOptions.CultureInvariant)]
    private static partial Regex SizeName();
}

/// <summary>
/// <c>image.optimize</c>: re-encode (auto, jpeg, webp, avif, png), quality 1–100, optional max size; reports
/// bytes saved, and keeps the original bytes when the encode is not smaller.
/// </summary>
internal sealed class ImageOptimizeHandler(VipsReady vips, KilnMetrics metrics, SharedImageDerivatives? shared = null) : IJobHandler
{
    public string Kind => ImagePipeline.Optimize;

    public static OptimizeOptions ReadParams(JobParams p) => new()
    {
        Format = ImageFormats.Parse(p.OneOf("format", ImageFormats.All, "auto")),
        Quality = p.Int("quality", 1, 100, 80),
        MaxWidth = p.OptionalInt("maxWidth", 1, 100_000),
        MaxHeight = p.OptionalInt("maxHeight", 1, 100_000),
    };

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var options = context.ReadParams(ReadParams);
        context.Progress.Report(new JobProgress(5, "optimize", TotalBytes: context.InputBytes));
        using var memory = vips.JobMemory();
        var (outcome, decodes) = await ImageOutcomes.SharedOrAloneAsync(shared, context, () =>
        {
            var r = ImageOptimizer.Optimize(context.RequireInput(), Path.Combine(context.OutputDirectory, ImageOutcomes.OptimizedName), options, vips.Limits, cancellationToken);
            return (ImageOutcomes.Optimized(r), r.Decodes);
        }, cancellationToken);

        ImageOutcomes.Decoded(metrics, Kind, decodes);
        var result = outcome.Result!;
        metrics.BytesSaved(Kind, result["originalBytes"]!.GetValue<long>(), result["outputBytes"]!.GetValue<long>());
        return outcome;
    }
}

/// <summary>
/// <c>image.enhance</c>: automatic levels and a mild sharpen, saved as the ENHANCED derivative; or, when
/// <c>Kiln:Enhance:Provider</c> names a remote model, that model's result (src/Kiln/Enhance).
/// </summary>
internal sealed class ImageEnhanceHandler(VipsReady vips, Kiln.Enhance.RemoteEnhanceRunner? remote = null) : IJobHandler
{
    public string Kind => ImagePipeline.Enhance;

    /// <summary>The local enhancer's settings; a remote model takes none, but the same params are accepted for it.</summary>
    public static EnhanceOptions ReadParams(JobParams p)
    {
        var defaults = new EnhanceOptions();
        return defaults with
        {
            Format = ImageFormats.Parse(p.OneOf("format", ImageFormats.All, ImageFormats.Name(defaults.Format))),
            Quality = p.Int("quality", 1, 100, defaults.Quality),
            SharpenSigma = p.Double("sharpen", 0, 10, defaults.SharpenSigma),
        };
    }

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var options = context.ReadParams(ReadParams);
        if (remote is not null)
        {
            return remote.RunAsync(context, cancellationToken);
        }

        context.Progress.Report(new JobProgress(5, "enhance", TotalBytes: context.InputBytes));
        EnhanceResult r;
        using (vips.JobMemory())
        {
            r = ImageEnhancer.Enhance(context.RequireInput(), Path.Combine(context.OutputDirectory, "enhanced"), options, vips.Limits, cancellationToken);
        }

        var result = new JsonObject
        {
            ["format"] = r.Format,
            ["width"] = r.Width,
            ["height"] = r.Height,
            ["bytes"] = r.Bytes,
            ["blackPoint"] = Math.Round(r.BlackPoint, 2),
            ["whitePoint"] = Math.Round(r.WhitePoint, 2),
            ["gain"] = Math.Round(r.Gain, 3),
            ["provider"] = "local",
        };
        return Task.FromResult(new JobOutcome(result, [new OutputFile("ENHANCED", Path.GetFileName(r.OutputPath), r.ContentType, Width: r.Width, Height: r.Height)]));
    }
}

internal static class ImageFormats
{
    /// <summary>Formats an image job can write; <c>auto</c> keeps the input's own where it can.</summary>
    public static readonly string[] All = ["auto", "jpeg", "webp", "avif", "png"];

    /// <summary>Formats a thumbnail can be: one fixed format, so every size has a known content type.</summary>
    public static readonly string[] Encoded = ["jpeg", "webp", "avif", "png"];

    public static ImageOutputFormat Parse(string name) => name switch
    {
        "auto" => ImageOutputFormat.Auto,
        "jpeg" => ImageOutputFormat.Jpeg,
        "webp" => ImageOutputFormat.Webp,
        "avif" => ImageOutputFormat.Avif,
        "png" => ImageOutputFormat.Png,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Readers offer only the names in All."),
    };

    public static string Name(ImageOutputFormat format) => format switch
    {
        ImageOutputFormat.Jpeg => "jpeg",
        ImageOutputFormat.Webp => "webp",
        ImageOutputFormat.Avif => "avif",
        ImageOutputFormat.Png => "png",
        _ => "auto",
    };
}
