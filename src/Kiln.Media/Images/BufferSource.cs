using Kiln.Media.Images.Png;
using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>Format detection and lazy loading for images held in memory (the counterpart of <see cref="ImageSource"/>).</summary>
internal static unsafe class BufferSource
{
    public static string FindLoader(ReadOnlyMemory<byte> input)
    {
        if (input.IsEmpty)
        {
            throw ImageErrorCodes.EmptyFile();
        }

        VipsRuntime.EnsureInitialized();
        string? loader;
        fixed (byte* p = input.Span)
        {
            loader = VipsOperation.PtrToString(VipsNative.vips_foreign_find_load_buffer(p, (nuint)input.Length));
        }

        if (loader is null)
        {
            VipsNative.vips_error_clear();
            throw ImageErrorCodes.UnsupportedFormat("The data is not in an image format Kiln accepts.");
        }

        return ImageFamilies.FromLoader(loader) is null
            ? throw ImageErrorCodes.UnsupportedFormat($"Images read by {loader} are not accepted.")
            : loader;
    }

    /// <summary>Opens the first frame, header only, and checks it against the limits before any pixel is decoded.</summary>
    public static VipsImage Open(VipsAreaHandle blob, string loader, double shrink, ImageLimits limits, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var op = VipsOperation.Create(loader);
        op.Set("buffer", blob).Set("access", "sequential").Set("fail_on", "error");
        var family = ImageFamilies.FromLoader(loader)!;
        shrink = ImageReducer.ShrinksOnLoad(family) ? shrink : 1;
        SetShrink(op, family, shrink);

        try
        {
            op.Build();
        }
        catch (VipsException e)
        {
            throw ImageErrorCodes.CorruptData("The image header cannot be read: " + e.Message, e);
        }

        var image = op.GetImage("out");
        var pixels = (long)(image.Width * shrink * image.Height * shrink);
        if (pixels > limits.MaxPixels)
        {
            image.Dispose();
            throw new MediaException(ImageErrorCodes.TooLarge, $"The image has about {pixels} pixels; the limit is {limits.MaxPixels}.");
        }

        return limits.ManagedPngDecoder && family == ImageFamilies.Png
            ? image.Then(i => ManagedPng.TryReplace(i, VipsBlobStream.Open(blob)) ?? i)
            : image;
    }

    /// <summary>
    /// Asks a loader to decode at 1/<paramref name="shrink"/> of the size: JPEG by DCT scaling (a power of two, see
    /// <see cref="ImageReducer.LoadShrink"/>), WebP by libwebp's scaled decode, by any factor.
    /// </summary>
    internal static void SetShrink(VipsOperation op, string family, double shrink)
    {
        if (shrink <= 1)
        {
            return;
        }

        if (family == ImageFamilies.Jpeg)
        {
            op.Set("shrink", (int)shrink);
        }
        else if (family == ImageFamilies.Webp)
        {
            op.Set("scale", 1.0 / shrink);
        }
    }
}
