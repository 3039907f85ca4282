using System.Runtime.Intrinsics;

namespace Kiln.Media.Images.Png;

/// <summary>Undoes PNG's per-row filters (RFC 2083 §6) in place.</summary>
/// <remarks>
/// Up has no dependency along the row and runs 32 or 16 bytes at a time. Sub, Average and Paeth depend on the
/// pixel to the left; Paeth, the costliest and the one adaptive encoders (libpng, libspng) pick most on photos,
/// runs a whole RGB or RGBA pixel per step, Sub and Average byte by byte.
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

        var start = bpp;
        if (bpp is 3 or 4 && Vector128.IsHardwareAccelerated)
        {
            start = PaethPixels(row, prior, length, bpp);
        }

        for (var i = start; i < length; i++)
        {
            int a = row[i - bpp], b = prior[i], c = prior[i - bpp];
            var pa = Math.Abs(b - c);
            var pb = Math.Abs(a - c);
            var pc = Math.Abs(a + b - c - c);
            row[i] += (byte)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
    }

    /// <summary>
    /// Paeth on whole 3- or 4-byte pixels, one pixel per step in 16-bit lanes (libpng's SSE2 approach): the
    /// dependency on the left pixel stays, but the three distances and the choice are computed for all bytes of a
    /// pixel at once. Returns where the scalar loop must go on.
    /// </summary>
    private static int PaethPixels(byte* row, byte* prior, int length, int bpp)
    {
        var a = Widen(Read(row, bpp));
        var c = Widen(Read(prior, bpp));
        var i = bpp;
        for (; i + bpp <= length; i += bpp)
        {
            var b = Widen(Read(prior + i, bpp));
            var x = Widen(Read(row + i, bpp));
            var p = b - c;
            var q = a - c;
            var pa = Vector128.Abs(p);
            var pb = Vector128.Abs(q);
            var pc = Vector128.Abs(p + q);
            var useA = Vector128.LessThanOrEqual(pa, pb) & Vector128.LessThanOrEqual(pa, pc);
            var useB = Vector128.LessThanOrEqual(pb, pc);
            var predictor = Vector128.ConditionalSelect(useA, a, Vector128.ConditionalSelect(useB, b, c));
            a = (x + predictor) & Vector128.Create((short)0xFF);
            var bytes = Vector128.Narrow(a, a).AsUInt32().ToScalar();
            if (bpp == 4)
            {
                *(uint*)(row + i) = bytes;
            }
            else
            {
                *(ushort*)(row + i) = (ushort)bytes;
                row[i + 2] = (byte)(bytes >> 16);
            }

            c = b;
        }

        return i;
    }

    private static uint Read(byte* p, int bpp) => bpp == 4 ? *(uint*)p : *(ushort*)p | ((uint)p[2] << 16);

    private static Vector128<short> Widen(uint pixel) =>
        Vector128.WidenLower(Vector128.CreateScalarUnsafe(pixel).AsByte()).AsInt16();
}
