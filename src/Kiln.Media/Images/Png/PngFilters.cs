using System.Runtime.Intrinsics;

namespace Kiln.Media.Images.Png;

/// <summary>Undoes PNG's per-row filters (RFC 2083 §6) in place.</summary>
/// <remarks>
/// Up has no dependency along the row and runs 32 or 16 bytes at a time. Sub, Average and Paeth depend on the
/// pixel to the left, so they run byte by byte with the bytes-per-pixel as the stride; encoders (libvips, libpng,
/// sharp) mostly pick None or Up on photos at their default settings, and inflating dominates either way.
/// </remarks>
internal static unsafe class PngFilters
{
    /// <summary>Unfilters <paramref name="row"/> given the already unfiltered row above (all zeros for the first).</summary>
    public static void Unfilter(byte filter, byte* row, byte* prior, int length, int bytesPerPixel)
    {
        switch (filter)
        {
            case 0:
                return;
            case 1:
                Sub(row, length, bytesPerPixel);
                return;
            case 2:
                Up(row, prior, length);
                return;
            case 3:
                Average(row, prior, length, bytesPerPixel);
                return;
            case 4:
                Paeth(row, prior, length, bytesPerPixel);
                return;
            default:
                throw new InvalidDataException($"A PNG row has the unknown filter type {filter}.");
        }
    }

    private static void Sub(byte* row, int length, int bpp)
    {
        for (var i = bpp; i < length; i++)
        {
            row[i] += row[i - bpp];
        }
    }

    private static void Up(byte* row, byte* prior, int length)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 32 <= length; i += 32)
            {
                Vector256.Store(Vector256.Load(row + i) + Vector256.Load(prior + i), row + i);
            }
        }

        for (; i + 16 <= length; i += 16)
        {
            Vector128.Store(Vector128.Load(row + i) + Vector128.Load(prior + i), row + i);
        }

        for (; i < length; i++)
        {
            row[i] += prior[i];
        }
    }

    private static void Average(byte* row, byte* prior, int length, int bpp)
    {
        var first = Math.Min(bpp, length);
        for (var i = 0; i < first; i++)
        {
            row[i] += (byte)(prior[i] >> 1);
        }

        for (var i = bpp; i < length; i++)
        {
            row[i] += (byte)((row[i - bpp] + prior[i]) >> 1);
        }
    }

    private static void Paeth(byte* row, byte* prior, int length, int bpp)
    {
        // Without a left neighbour the predictor is the byte above.
        var first = Math.Min(bpp, length);
        for (var i = 0; i < first; i++)
        {
            row[i] += prior[i];
        }

        for (var i = bpp; i < length; i++)
        {
            int a = row[i - bpp], b = prior[i], c = prior[i - bpp];
            var pa = Math.Abs(b - c);
            var pb = Math.Abs(a - c);
            var pc = Math.Abs(a + b - c - c);
            row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
    }
}
