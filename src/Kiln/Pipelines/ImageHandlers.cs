using System.Text.Json.Nodes;
using Kiln.Media.Images;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Queue;

namespace Kiln.Pipelines;

/// <summary>
/// <c>image.thumbnails</c>: THUMBNAIL 150x150 cover, MEDIUM 800x600 inside, LARGE 1920x1080 inside (JPEG Q80),
/// never upscaled, upright. Params may replace the set: <c>{"sizes": [{"name": "SQUARE", "width": 300,
/// "height": 300, "fit": "cover", "format": "webp", "quality": 75}]}</c>.
/// </summary>
internal sealed class ImageThumbnailsHandler(VipsReady vips) : IJobHandler
{
    public string Kind => ImagePipeline.Thumbnails;

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var specs = ReadSpecs(context.Params);
        context.Progress.Report(new JobProgress(5, "thumbnails", TotalBytes: context.InputBytes));
        var results = ImageThumbnailer.Generate(context.RequireInput(), context.OutputDirectory, specs, vips.Limits, cancellationToken);
        var outputs = results.Select(r => new OutputFile(r.Name, Path.GetFileName(r.Path), r.ContentType, Width: r.Width, Height: r.Height)).ToList();
        var result = new JsonObject
        {
            ["thumbnails"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
            {
                ["name"] = r.Name,
                ["width"] = r.Width,
                ["height"] = r.Height,
                ["bytes"] = r.Bytes,
            }).ToArray()),
        };
        return Task.FromResult(new JobOutcome(result, outputs));
    }

    private static List<ThumbnailSpec> ReadSpecs(JsonObject p)
    {
        if (p["sizes"] is null)
        {
            return [.. ThumbnailSpec.Defaults];
        }

        if (p["sizes"] is not JsonArray { Count: > 0 and <= 10 } sizes || sizes.Any(s => s is not JsonObject))
        {
            throw new JobFailedException("params.invalid", "sizes must be an array of 1 to 10 objects.");
        }

        var specs = new List<ThumbnailSpec>();
        foreach (var size in sizes.Cast<JsonObject>())
        {
            var name = size["name"]?.GetValueKind() == System.Text.Json.JsonValueKind.String ? size["name"]!.GetValue<string>() : null;
            if (name is not { Length: > 0 and <= 32 } || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                throw new JobFailedException("params.invalid", "Every size needs a name of 1-32 letters, digits, '-' or '_'.");
            }

            specs.Add(new ThumbnailSpec(
                name.ToUpperInvariant(),
                size.Int("width", 1, 10_000) ?? throw new JobFailedException("params.invalid", $"Size {name} needs a width."),
                size.Int("height", 1, 10_000) ?? throw new JobFailedException("params.invalid", $"Size {name} needs a height."),
                size.OneOf("fit", "cover", "inside") == "cover" ? ThumbnailFit.Cover : ThumbnailFit.Inside,
                ImageFormats.Parse(size.OneOf("format", "jpeg", "webp", "avif", "png")) ?? ImageOutputFormat.Jpeg,
                size.Int("quality", 1, 100) ?? 80));
        }

        if (specs.Select(s => s.Name).Distinct(StringComparer.Ordinal).Count() != specs.Count)
        {
            throw new JobFailedException("params.invalid", "Size names must be unique.");
        }

        return specs;
    }
}

/// <summary>
/// <c>image.optimize</c>: re-encode (auto, jpeg, webp, avif, png), quality 1–100, optional max size; reports
/// bytes saved, and keeps the original bytes when the encode is not smaller.
/// </summary>
internal sealed class ImageOptimizeHandler(VipsReady vips, KilnMetrics metrics) : IJobHandler
{
    public string Kind => ImagePipeline.Optimize;

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var p = context.Params;
        var options = new OptimizeOptions
        {
            Format = ImageFormats.Parse(p.OneOf("format", "auto", "jpeg", "webp", "avif", "png")) ?? ImageOutputFormat.Auto,
            Quality = p.Int("quality", 1, 100) ?? 80,
            MaxWidth = p.Int("maxWidth", 1, 100_000),
            MaxHeight = p.Int("maxHeight", 1, 100_000),
        };
        context.Progress.Report(new JobProgress(5, "optimize", TotalBytes: context.InputBytes));
        var r = ImageOptimizer.Optimize(context.RequireInput(), Path.Combine(context.OutputDirectory, "optimized"), options, vips.Limits, cancellationToken);
        metrics.BytesSaved(Kind, r.OriginalBytes, r.OutputBytes);
        var result = new JsonObject
        {
            ["format"] = r.Format,
            ["width"] = r.Width,
            ["height"] = r.Height,
            ["frames"] = r.Frames,
            ["originalBytes"] = r.OriginalBytes,
            ["outputBytes"] = r.OutputBytes,
            ["bytesSaved"] = r.BytesSaved,
            ["ratio"] = Math.Round(r.Ratio, 4),
            ["keptOriginal"] = r.KeptOriginal,
        };
        return Task.FromResult(new JobOutcome(result, [new OutputFile("OPTIMIZED", Path.GetFileName(r.OutputPath), r.ContentType, Width: r.Width, Height: r.Height)]));
    }
}

/// <summary>
/// <c>image.enhance</c>: automatic levels and a mild sharpen, saved as the ENHANCED derivative; or, when
/// <c>Kiln:Enhance:Provider</c> names a remote model, that model's result (src/Kiln/Enhance).
/// </summary>
internal sealed class ImageEnhanceHandler(VipsReady vips, Kiln.Enhance.RemoteEnhanceRunner? remote = null) : IJobHandler
{
    public string Kind => ImagePipeline.Enhance;

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        if (remote is not null)
        {
            return remote.RunAsync(context, cancellationToken);
        }

        var p = context.Params;
        var defaults = new EnhanceOptions();
        var options = defaults with
        {
            Format = ImageFormats.Parse(p.OneOf("format", "auto", "jpeg", "webp", "avif", "png")) ?? defaults.Format,
            Quality = p.Int("quality", 1, 100) ?? defaults.Quality,
            SharpenSigma = p.Double("sharpen", 0, 10) ?? defaults.SharpenSigma,
        };
        context.Progress.Report(new JobProgress(5, "enhance", TotalBytes: context.InputBytes));
        var r = ImageEnhancer.Enhance(context.RequireInput(), Path.Combine(context.OutputDirectory, "enhanced"), options, vips.Limits, cancellationToken);
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
    public static ImageOutputFormat? Parse(string? name) => name switch
    {
        null => null,
        "auto" => ImageOutputFormat.Auto,
        "jpeg" => ImageOutputFormat.Jpeg,
        "webp" => ImageOutputFormat.Webp,
        "avif" => ImageOutputFormat.Avif,
        "png" => ImageOutputFormat.Png,
        _ => throw new JobFailedException("params.invalid", $"Unknown image format '{name}'."),
    };
}
