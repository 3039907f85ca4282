using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>An encoded image produced in memory.</summary>
public sealed record ResizedImage(byte[] Bytes, int Width, int Height, string ContentType);

/// <summary>
/// Resizes an encoded image held in memory and encodes the result to memory: the path for on-the-fly sizes,
/// where files would only add I/O. Upright output, never upscaled, Lanczos3.
/// </summary>
public static class ImageResizer
{
    /// <summary>Fits the image inside <paramref name="width"/> x <paramref name="height"/> and encodes it as JPEG.</summary>
    /// <exception cref="MediaException"><c>image.empty</c>, <c>image.unsupported</c>, <c>image.corrupt</c> or <c>image.too_large</c>.</exception>
    public static ResizedImage ResizeToJpeg(
        ReadOnlyMemory<byte> input,
        int width,
        int height,
        int quality,
        ImageLimits limits,
        CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        ArgumentNullException.ThrowIfNull(limits);

        var loader = BufferSource.FindLoader(input);
        try
        {
            using var blob = VipsOperation.CopyToBlob(input.Span);
            using var resized = Resize(blob, loader, width, height, limits, cancellationToken);
            var bytes = resized.SaveToBuffer("jpegsave_buffer", cancellationToken, ("Q", quality), ("strip", true));
            return new ResizedImage(bytes, resized.Width, resized.Height, "image/jpeg");
        }
        catch (VipsException e)
        {
            throw ImageErrorCodes.CorruptData("The image cannot be decoded: " + e.Message, e);
        }
    }

    private static VipsImage Resize(VipsAreaHandle input, string loader, int width, int height, ImageLimits limits, CancellationToken cancellationToken)
    {
        using var header = BufferSource.Open(input, loader, shrink: 1, limits, cancellationToken);
        var info = ImageProbe.Describe(header, ImageFamilies.FromLoader(loader)!);
        var scale = Math.Min(1.0, Math.Min((double)width / info.Width, (double)height / info.Height));
        var targetWidth = Math.Max(1, (int)Math.Round(info.Width * scale));
        var targetHeight = Math.Max(1, (int)Math.Round(info.Height * scale));

        if (!JpegFastPath.Applies(info))
        {
            // The general case: libvips' thumbnail handles rotation, alpha premultiplication and colour profiles.
            return VipsOperation.Run(
                    "thumbnail_buffer", ("buffer", input), ("width", targetWidth), ("height", targetHeight), ("size", "down"), ("fail_on", "error"))
                .Then(ImagePipeline.ToSrgb);
        }

        return JpegFastPath.Reduce(
            shrink => shrink == 1 ? header.Call("copy") : BufferSource.Open(input, loader, shrink, limits, cancellationToken),
            info.StoredWidth,
            info.StoredHeight,
            targetWidth,
            targetHeight);
    }
}
