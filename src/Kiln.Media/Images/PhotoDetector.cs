using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Tells a photo from a graphic by how many distinct colours it uses: a photo's noise and gradients spread over a
/// large part of the colour cube, while logos, screenshots and diagrams occupy few cells. Measured on a small
/// thumbnail so the cost does not grow with the image.
/// </summary>
internal static class PhotoDetector
{
    private const int Bins = 16;

    /// <summary>
    /// Share of the 16x16x16 RGB cells a photo occupies at least. Measured: flat graphics use well under 0.1 %,
    /// photos from the corpus 3–16 %. A grey image occupies at most 16 cells, so it always counts as a graphic.
    /// </summary>
    internal const double PhotoColourShare = 0.02;

    public static bool LooksLikePhoto(string path, CancellationToken cancellationToken) =>
        ColourShare(path, cancellationToken) >= PhotoColourShare;

    /// <summary>
    /// The same test on an image already decoded into memory (<see cref="SharedDecode"/>), so it costs no second
    /// decode of the file: libvips' <c>thumbnail_image</c> is <c>thumbnail</c> without the load.
    /// </summary>
    public static bool LooksLikePhoto(VipsImage decoded, CancellationToken cancellationToken) =>
        ColourShare(() => VipsOperation.Run("thumbnail_image", ("in", decoded), ("width", 256), ("height", 256), ("size", "down")), cancellationToken)
        >= PhotoColourShare;

    internal static double ColourShare(string path, CancellationToken cancellationToken) =>
        ColourShare(
            () => VipsOperation.Run("thumbnail", ("filename", path), ("width", 256), ("height", 256), ("size", "down"), ("fail_on", "error")),
            cancellationToken);

    private static double ColourShare(Func<VipsImage> small, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var colour = small().Then(ImagePipeline.ToSrgb);
        if (colour.Bands < 3)
        {
            return 0.0;
        }

        // Alpha does not make a picture a photo; only the colour bands count.
        using var bands = colour.Call("extract_band", ("band", 0), ("n", 3));
        using var histogram = bands.Call("hist_find_ndim", ("bins", Bins));
        using var occupied = histogram.Call("relational_const", ("relational", "more"), ("c", new[] { 0.0 }));
        return occupied.Statistic("avg", "out", cancellationToken) / 255.0;
    }
}
