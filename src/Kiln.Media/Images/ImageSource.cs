using Kiln.Media.Images.Png;
using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>
/// Detects an image file's format from its bytes and opens it lazily, refusing it from the header alone when
/// it is empty, of a format Kiln does not accept, or larger than the limits.
/// </summary>
internal sealed class ImageSource
{
    private ImageSource(string path, string loader, string family, long bytes)
    {
        Path = path;
        Loader = loader;
        Family = family;
        Bytes = bytes;
    }

    public string Path { get; }

    /// <summary>The libvips loader class, for example <c>VipsForeignLoadJpegFile</c>.</summary>
    public string Loader { get; }

    /// <summary>jpeg, png, webp, gif, heif or tiff (heif is refined to avif once the header is read).</summary>
    public string Family { get; private set; }

    public long Bytes { get; }

    /// <summary>Families whose frames make an animation; only these are ever loaded with all pages.</summary>
    public bool CanAnimate => Family is ImageFamilies.Gif or ImageFamilies.Webp;

    public static ImageSource Detect(string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists)
        {
            throw new FileNotFoundException("Input image not found.", path);
        }

        if (file.Length == 0)
        {
            throw ImageErrorCodes.EmptyFile();
        }

        VipsRuntime.EnsureInitialized();

        // vips_foreign_find_load sniffs the first bytes of the file (each loader's is_a); the file name only
        // matters for formats without a signature, and none of the accepted families is one of those.
        var loader = VipsOperation.PtrToString(VipsNative.vips_foreign_find_load(path));
        if (loader is null)
        {
            VipsNative.vips_error_clear();
            throw ImageErrorCodes.UnsupportedFormat("The file is not in an image format Kiln accepts.");
        }

        var family = ImageFamilies.FromLoader(loader)
            ?? throw ImageErrorCodes.UnsupportedFormat($"Images read by {loader} are not accepted.");
        return new ImageSource(path, loader, family, file.Length);
    }

    /// <summary>
    /// Opens the image. Only the header is read here; pixels are decoded later by whatever sink pulls them.
    /// </summary>
    /// <param name="sequential">Top-to-bottom access only: the decoder streams instead of holding the whole image.</param>
    /// <param name="allPages">Load every frame as one tall strip (animations); otherwise only the first.</param>
    /// <param name="shrink">
    /// Decode at 1/n of the size (1, 2, 4 or 8) where the decoder can (<see cref="ImageReducer.ShrinksOnLoad"/>:
    /// libjpeg's DCT scaling, libwebp's scaled decode); ignored for other formats.
    /// </param>
    public VipsImage Open(bool sequential, bool allPages, ImageLimits limits, CancellationToken cancellationToken, double shrink = 1) =>
        Open(sequential, allPages, limits, shrink, pixels: true, cancellationToken);

    /// <summary>Opens the first frame for its header only (no pixel of it will be asked for).</summary>
    public VipsImage OpenHeader(ImageLimits limits, CancellationToken cancellationToken) =>
        Open(sequential: true, allPages: false, limits, shrink: 1, pixels: false, cancellationToken);

    private FileStream OpenFile() =>
        new(Path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 64 * 1024, FileOptions.SequentialScan);

    private VipsImage Open(bool sequential, bool allPages, ImageLimits limits, double shrink, bool pixels, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var op = VipsOperation.Create(Loader);
        op.Set("filename", Path)
            .Set("access", sequential ? "sequential" : "random")
            // Truncated or damaged data fails the load instead of yielding grey or half-decoded pixels.
            .Set("fail_on", "error");
        if (allPages && CanAnimate)
        {
            op.Set("n", -1);
        }

        shrink = ImageReducer.ShrinksOnLoad(Family) ? shrink : 1;
        BufferSource.SetShrink(op, Family, shrink);

        try
        {
            op.Build();
        }
        catch (VipsException e)
        {
            throw ImageErrorCodes.CorruptData("The image header cannot be read: " + e.Message, e);
        }

        var image = op.GetImage("out");
        try
        {
            RefineFamily(image);
            if (shrink == 1)
            {
                // A shrunk decode is opened after the full-size header passed this check.
                CheckLimits(image, allPages && CanAnimate, limits);
            }

            return sequential && pixels && limits.ManagedPngDecoder && Family == ImageFamilies.Png
                ? image.Then(i => ManagedPng.TryReplace(i, OpenFile()) ?? i)
                : image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    private void RefineFamily(VipsImage image)
    {
        if (Family == ImageFamilies.Heif && image.GetString("heif-compression") == "av1")
        {
            Family = ImageFamilies.Avif;
        }
    }

    /// <summary>
    /// What every transform does before touching pixels: detect the loader, read the header, check the limits.
    /// </summary>
    public static (ImageSource Source, ImageInfo Info) Prepare(string path, ImageLimits limits, CancellationToken cancellationToken)
    {
        var source = Detect(path);
        var info = ImageProbe.Read(source, cancellationToken);
        EnsureWithin(info, limits);
        return (source, info);
    }

    /// <summary>Runs a transform on a probed image: the header was fine, so a libvips failure is undecodable pixel data.</summary>
    public static T Decode<T>(Func<T> transform)
    {
        try
        {
            return transform();
        }
        catch (VipsException e)
        {
            throw ImageErrorCodes.CorruptData("The image cannot be decoded: " + e.Message, e);
        }
    }

    /// <summary>Refuses a frame larger than the limit, from probed header values (before any other decoder runs).</summary>
    public static void EnsureWithin(ImageInfo info, ImageLimits limits) =>
        EnsureFrameWithin(info.StoredWidth, info.StoredHeight, limits);

    private static void EnsureFrameWithin(int width, int height, ImageLimits limits)
    {
        var framePixels = (long)width * height;
        if (framePixels > limits.MaxPixels)
        {
            throw new MediaException(
                ImageErrorCodes.TooLarge,
                $"The image is {width}x{height} ({framePixels} pixels); the limit is {limits.MaxPixels} pixels.");
        }
    }

    private static void CheckLimits(VipsImage image, bool allPages, ImageLimits limits)
    {
        var frameHeight = allPages ? image.PageHeight : image.Height;
        EnsureFrameWithin(image.Width, frameHeight, limits);

        if (!allPages)
        {
            return;
        }

        var frames = image.Height / Math.Max(1, frameHeight);
        var totalPixels = (long)image.Width * image.Height;
        if (frames > limits.MaxFrames || totalPixels > limits.MaxTotalPixels)
        {
            throw new MediaException(
                ImageErrorCodes.TooLarge,
                $"The animation has {frames} frames ({totalPixels} pixels); the limits are {limits.MaxFrames} frames and {limits.MaxTotalPixels} pixels.");
        }
    }
}
