using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>An encoded image produced in memory.</summary>
public sealed record ResizedImage(byte[] Bytes, int Width, int Height, string ContentType);

/// <summary>
/// Resizes an encoded image held in memory and encodes the result to memory: the path for on-the-fly sizes,
/// where files would only add I/O. Upright output, never upscaled, Lanczos3, alpha flattened onto white; the
/// pixels come from the same <see cref="ImageReducer"/> as the thumbnails of the <c>image.thumbnails</c> job.
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

    /// <summary>The same reduction as the <c>image.thumbnails</c> job (<see cref="ImageReducer"/>), alpha flattened onto white.</summary>
    private static VipsImage Resize(VipsAreaHandle input, string loader, int width, int height, ImageLimits limits, CancellationToken cancellationToken)
    {
        ImageInfo info;
        using (var header = BufferSource.Open(input, loader, shrink: 1, limits, cancellationToken))
        {
            info = ImageProbe.Describe(header, ImageFamilies.FromLoader(loader)!);
        }

        return ImageReducer.Thumbnail(
            info,
            shrink => BufferSource.Open(input, loader, shrink, limits, cancellationToken),
            () => VipsOperation.Run("thumbnail_buffer", ("buffer", input), ("width", width), ("height", height), ("size", "down"), ("fail_on", "error")),
            width,
            height,
            ThumbnailFit.Inside,
            flatten: true,
            cancellationToken);
    }
}
