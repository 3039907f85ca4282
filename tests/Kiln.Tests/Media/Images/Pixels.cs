using Kiln.Media.Images;
using Kiln.Media.Vips;

namespace Kiln.Tests.Media.Images;

/// <summary>Pixel-level comparisons of output files, done with libvips itself.</summary>
internal static class Pixels
{
    public static VipsImage Load(string path) =>
        ImageSource.Detect(path).Open(sequential: false, allPages: false, ImageLimits.Default, CancellationToken.None);

    /// <summary>Mean absolute difference per band sample (0–255) between two images of the same size.</summary>
    public static double MeanAbsDifference(string a, string b)
    {
        using var left = Load(a);
        using var right = Load(b);
        Assert.Equal((left.Width, left.Height, left.Bands), (right.Width, right.Height, right.Bands));
        using var diff = VipsOperation.Run("subtract", ("left", left), ("right", right));
        using var abs = diff.Call("abs");
        return abs.Statistic("avg", "out", CancellationToken.None);
    }

    /// <summary>Mean of each band over the whole image.</summary>
    public static double Mean(string path)
    {
        using var image = Load(path);
        return image.Statistic("avg", "out", CancellationToken.None);
    }

    /// <summary>Standard deviation over all samples: a rough measure of contrast.</summary>
    public static double Deviation(string path)
    {
        using var image = Load(path);
        return image.Statistic("deviate", "out", CancellationToken.None);
    }

    /// <summary>Mean of one band over a rectangle.</summary>
    public static double MeanOf(string path, int band, int left, int top, int width, int height)
    {
        using var image = Load(path);
        using var area = VipsOperation.Run("extract_area", ("input", image), ("left", left), ("top", top), ("width", width), ("height", height));
        using var one = area.Call("extract_band", ("band", band));
        return one.Statistic("avg", "out", CancellationToken.None);
    }
}
