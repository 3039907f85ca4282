namespace Kiln.Media.FFmpeg;

/// <summary>Frame size arithmetic. Sizes are always even because 4:2:0 chroma (what players accept) needs it.</summary>
internal static class ScaleMath
{
    /// <summary>Fits inside the box keeping aspect, never upscaling, rounded to even numbers (at least 2).</summary>
    public static (int Width, int Height) FitInside(int width, int height, int maxWidth, int maxHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var scale = Math.Min(1.0, Math.Min((double)maxWidth / width, (double)maxHeight / height));
        return (Math.Min(Even(width * scale), EvenFloor(width)), Math.Min(Even(height * scale), EvenFloor(height)));
    }

    /// <summary>
    /// Scales so that the shorter side becomes <paramref name="shortSide"/>: a "720p" rendition of a portrait
    /// phone clip is 720 wide, like the landscape one is 720 high, so both get the same pixel budget.
    /// </summary>
    public static (int Width, int Height) ForShortSide(int width, int height, int shortSide)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        var scale = (double)shortSide / Math.Min(width, height);
        return (Even(width * scale), Even(height * scale));
    }

    public static int Even(double value) => Math.Max(2, (int)Math.Round(value / 2, MidpointRounding.AwayFromZero) * 2);

    private static int EvenFloor(int value) => Math.Max(2, value / 2 * 2);
}
