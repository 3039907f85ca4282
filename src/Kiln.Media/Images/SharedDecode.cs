using Kiln.Media.Vips;

namespace Kiln.Media.Images;

/// <summary>The optimized copy to make from a shared decode: what <see cref="ImageOptimizer.Optimize"/> takes.</summary>
public sealed record OptimizeRequest(string OutputPathWithoutExtension, OptimizeOptions Options);

/// <summary>The thumbnails to make from a shared decode: what <see cref="ImageThumbnailer.Generate"/> takes.</summary>
public sealed record ThumbnailsRequest(string OutputDirectory, IReadOnlyList<ThumbnailSpec> Specs);

/// <summary>What <see cref="SharedDecode.Make"/> wrote: the same results the separate calls return.</summary>
/// <param name="Decodes">Times the input was decoded for all of it: 1 (a count, so that every path reports alike).</param>
public sealed record SharedDerivatives(OptimizeResult Optimized, IReadOnlyList<ThumbnailResult> Thumbnails, int Decodes);

/// <summary>
/// The optimized copy and the thumbnails of one image from ONE decode: the image is decoded at full size into memory
/// once, and the re-encode and every size read from that (libvips images are immutable, so several pipelines can
/// read one decoded image side by side). Outputs are exactly those of <see cref="ImageOptimizer.Optimize"/> and
/// <see cref="ImageThumbnailer.Generate"/> (same names, formats and sizes).
/// </summary>
/// <remarks>
/// Why: the optimized copy needs the full-size pixels anyway, and for PNG, TIFF, GIF and WebP the thumbnails decode
/// (nearly) the whole image too, and <c>auto</c> a third time for a lossless input to tell a photo from a graphic; one
/// decode serves all of them. For JPEG (and WebP) the sizes do not reduce from the full-size pixels (that cost more than
/// libjpeg's DCT-scaled 1/2 decode saves, 1.10x the CPU of two decodes) but from a box average of them by the factor
/// their own decode would have shrunk on load (<see cref="ImageReducer.ShrinkShared"/>): 0.94–1.00x the CPU of two
/// decodes for a plain JPEG, less for a rotated or profiled one (docs/decisions.md). Holding the decode costs memory (3 bytes a
/// pixel for RGB, 8 for 16-bit RGBA), so only images up to <see cref="ImageLimits.SharedDecodeMaxPixels"/> share it;
/// others, animations and what the reducer does not take (<see cref="ImageReducer.Applies"/>: CMYK, HEIF/AVIF…) are
/// left to the separate calls, which stream.
/// </remarks>
public static class SharedDecode
{
    /// <summary>True when <see cref="Make"/> would share one decode for this probed image.</summary>
    public static bool Applies(ImageInfo info, ImageLimits limits)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(limits);
        return ImageReducer.Applies(info)
            && (long)info.StoredWidth * info.StoredHeight <= limits.SharedDecodeMaxPixels;
    }

    /// <summary><see cref="Applies(ImageInfo, ImageLimits)"/> from the file's header (cheap: no pixel is decoded).</summary>
    /// <exception cref="MediaException">The input is empty, unsupported, corrupt or too large.</exception>
    public static bool Applies(string inputPath, ImageLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        return Applies(ImageSource.Prepare(inputPath, limits, CancellationToken.None).Info, limits);
    }

    /// <summary>
    /// Makes both from one decode, or returns null without decoding when the image does not qualify
    /// (<see cref="Applies"/>); the caller then makes each on its own.
    /// </summary>
    /// <exception cref="MediaException">The input is empty, unsupported, corrupt or too large.</exception>
    public static SharedDerivatives? Make(
        string inputPath,
        OptimizeRequest optimize,
        ThumbnailsRequest thumbnails,
        ImageLimits limits,
        CancellationToken cancellationToken) =>
        Make(inputPath, optimize, thumbnails, limits, formatRule: true, cancellationToken);

    /// <summary>
    /// <see cref="Make(string, OptimizeRequest, ThumbnailsRequest, ImageLimits, CancellationToken)"/>; with
    /// <paramref name="formatRule"/> false it shares for JPEG and WebP too (what the rule was measured against, by
    /// <c>Kiln.Bench derivatives</c>; never in the product).
    /// </summary>
    internal static SharedDerivatives? Make(
        string inputPath,
        OptimizeRequest optimize,
        ThumbnailsRequest thumbnails,
        ImageLimits limits,
        bool formatRule,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(optimize);
        ArgumentNullException.ThrowIfNull(thumbnails);
        ArgumentNullException.ThrowIfNull(limits);
        optimize.Options.Validate();
        ImageThumbnailer.Validate(thumbnails.Specs);

        var (source, info) = ImageSource.Prepare(inputPath, limits, cancellationToken);
        if (formatRule ? !Applies(info, limits) : !ImageReducer.Applies(info) || (long)info.StoredWidth * info.StoredHeight > limits.SharedDecodeMaxPixels)
        {
            return null;
        }

        return ImageSource.Decode(() =>
        {
            // Sequential: the decoder streams into the memory image top to bottom; the copy is random access afterwards
            // (a rotation reads it out of order).
            using var decoded = source.Open(sequential: true, allPages: false, limits, cancellationToken)
                .Then(i => i.CopyMemory(cancellationToken));
            OptimizeResult? optimized = null;
            ThumbnailBatch? batch = null;
            try
            {
                Parallel.Invoke(
                    new ParallelOptions { CancellationToken = cancellationToken },
                    () =>
                    {
                        var encoded = ImageOptimizer.Encode(
                            source,
                            info,
                            _ => decoded.Call("copy"),
                            () => PhotoDetector.LooksLikePhoto(decoded, cancellationToken),
                            optimize.OutputPathWithoutExtension,
                            optimize.Options,
                            cancellationToken);
                        optimized = encoded with { Decodes = 0 };
                    },
                    () => batch = ImageThumbnailer.Generate(
                        source, info, decoded, thumbnails.OutputDirectory, thumbnails.Specs, limits, cancellationToken));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                // All or nothing, like each call alone: one failed half must not leave the other's files behind.
                foreach (var path in (batch?.Thumbnails.Select(t => t.Path) ?? []).Append(optimized?.OutputPath))
                {
                    if (path is not null)
                    {
                        File.Delete(path);
                    }
                }

                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
                throw;
            }

            return new SharedDerivatives(optimized!, batch!.Thumbnails, 1 + batch.Decodes);
        });
    }
}
