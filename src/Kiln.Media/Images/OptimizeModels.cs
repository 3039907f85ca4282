namespace Kiln.Media.Images;

/// <summary>How <see cref="ImageOptimizer"/> re-encodes an image.</summary>
public sealed record OptimizeOptions
{
    /// <summary>Output format; <see cref="ImageOutputFormat.Auto"/> follows the rule in docs/images.md.</summary>
    public ImageOutputFormat Format { get; init; } = ImageOutputFormat.Auto;

    /// <summary>Encoder quality 1–100 for JPEG, WebP and AVIF; PNG is always lossless.</summary>
    public int Quality { get; init; } = 80;

    /// <summary>Largest output width; the image is scaled down to fit, never up.</summary>
    public int? MaxWidth { get; init; }

    /// <summary>Largest output height; the image is scaled down to fit, never up.</summary>
    public int? MaxHeight { get; init; }

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Quality, 1, nameof(Quality));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Quality, 100, nameof(Quality));
        if (MaxWidth is { } w)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(w, 1, nameof(MaxWidth));
        }

        if (MaxHeight is { } h)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(h, 1, nameof(MaxHeight));
        }
    }
}

/// <summary>What <see cref="ImageOptimizer.Optimize"/> wrote.</summary>
/// <param name="OutputPath">The file written: the requested path plus the extension of <paramref name="Format"/>.</param>
/// <param name="Format">Family of the file written (jpeg, webp, avif, png; the original's family when kept).</param>
/// <param name="Frames">Frames in the output (more than 1 only for an animated WebP).</param>
/// <param name="KeptOriginal">True when the encoded result was not smaller, so the original bytes were copied instead.</param>
public sealed record OptimizeResult(
    string OutputPath,
    string Format,
    string ContentType,
    int Width,
    int Height,
    int Frames,
    long OriginalBytes,
    long OutputBytes,
    bool KeptOriginal)
{
    /// <summary>Output size over original size: 0.25 means the output is a quarter of the original.</summary>
    public double Ratio => OriginalBytes == 0 ? 1.0 : (double)OutputBytes / OriginalBytes;

    public long BytesSaved => OriginalBytes - OutputBytes;

    /// <summary>
    /// Times the input file was decoded for this result: 1, plus 1 when <c>auto</c> looked at a lossless image's colours
    /// to choose WebP or PNG; 0 when it was made from a decode shared with the thumbnails (<see cref="SharedDecode"/>).
    /// </summary>
    public int Decodes { get; init; } = 1;
}
