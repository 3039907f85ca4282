namespace Kiln.Media.Images;

/// <summary>How <see cref="ImageEnhancer"/> corrects an image.</summary>
public sealed record EnhanceOptions
{
    /// <summary>JPEG, WebP, PNG or AVIF; <see cref="ImageOutputFormat.Auto"/> is WebP with alpha, JPEG without.</summary>
    public ImageOutputFormat Format { get; init; } = ImageOutputFormat.Auto;

    public int Quality { get; init; } = 85;

    /// <summary>Share of pixels (in percent) allowed to clip to black: the black point is this percentile of lightness.</summary>
    public double LowPercentile { get; init; } = 0.5;

    /// <summary>The white point is this percentile of lightness.</summary>
    public double HighPercentile { get; init; } = 99.5;

    /// <summary>
    /// The largest contrast stretch. A nearly flat image (fog, a document scan) would otherwise be stretched until
    /// its noise shows; capped, it gets a visible but natural correction.
    /// </summary>
    public double MaxGain { get; init; } = 2.0;

    /// <summary>Radius (Gaussian sigma, pixels) of the unsharp mask; 0 turns sharpening off.</summary>
    public double SharpenSigma { get; init; } = 1.0;

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(Quality, 1, nameof(Quality));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Quality, 100, nameof(Quality));
        ArgumentOutOfRangeException.ThrowIfNegative(LowPercentile, nameof(LowPercentile));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(HighPercentile, 100.0, nameof(HighPercentile));
        if (LowPercentile >= HighPercentile)
        {
            throw new ArgumentException("LowPercentile must be below HighPercentile.", nameof(LowPercentile));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(MaxGain, 1.0, nameof(MaxGain));
        ArgumentOutOfRangeException.ThrowIfNegative(SharpenSigma, nameof(SharpenSigma));
    }
}

/// <summary>What <see cref="ImageEnhancer.Enhance"/> wrote and the levels it applied.</summary>
/// <param name="BlackPoint">Lightness (CIELAB L, 0–100) mapped to black.</param>
/// <param name="WhitePoint">Lightness (CIELAB L, 0–100) mapped to white, before the gain cap.</param>
/// <param name="Gain">Contrast multiplier applied to lightness (1 = unchanged).</param>
public sealed record EnhanceResult(
    string OutputPath,
    string Format,
    string ContentType,
    int Width,
    int Height,
    long Bytes,
    double BlackPoint,
    double WhitePoint,
    double Gain);
