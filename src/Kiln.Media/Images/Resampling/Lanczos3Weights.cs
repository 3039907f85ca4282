namespace Kiln.Media.Images.Resampling;

/// <summary>
/// The Lanczos3 weights of one output pixel (or row) of a reduction, in 14-bit fixed point: the one definition both
/// passes (<see cref="HorizontalLanczos3"/>, <see cref="VerticalLanczos3"/>) use, so they agree.
/// </summary>
internal static class Lanczos3Weights
{
    /// <summary>Fixed-point bits: the weights of one output sum to 1 &lt;&lt; Precision.</summary>
    public const int Precision = 14;

    private const int Support = 3;

    /// <summary>The most input samples one output can weigh when reducing by <paramref name="scale"/>.</summary>
    public static int MaxTaps(double scale) => ((int)Math.Ceiling(Support * scale) * 2) + 1;

    /// <summary>
    /// Writes the weights of output <paramref name="index"/> into <paramref name="weights"/> (at least
    /// <see cref="MaxTaps"/> long) and returns the first input sample they apply to and how many there are.
    /// </summary>
    public static (int First, int Count) For(int index, int inSize, double scale, Span<short> weights)
    {
        // Sample i covers [i, i+1); the output's centre maps to this input coordinate.
        var support = Support * scale;
        var centre = (index + 0.5) * scale;
        var first = Math.Max(0, (int)(centre - support + 0.5));
        var last = Math.Min(inSize, (int)(centre + support + 0.5));
        var count = last - first;
        Span<double> taps = stackalloc double[count];
        var sum = 0.0;
        for (var i = 0; i < count; i++)
        {
            taps[i] = Lanczos3((first + i - centre + 0.5) / scale);
            sum += taps[i];
        }

        var (total, biggest) = (0, 0);
        for (var i = 0; i < count; i++)
        {
            weights[i] = (short)Math.Round(taps[i] / sum * (1 << Precision));
            total += weights[i];
            biggest = weights[i] > weights[biggest] ? i : biggest;
        }

        // Rounding must not change the overall gain: a flat input stays exactly flat.
        weights[biggest] += (short)((1 << Precision) - total);
        return (first, count);
    }

    private static double Lanczos3(double x)
    {
        if (x == 0)
        {
            return 1.0;
        }

        if (x <= -Support || x >= Support)
        {
            return 0.0;
        }

        var px = Math.PI * x;
        return Support * Math.Sin(px) * Math.Sin(px / Support) / (px * px);
    }
}
