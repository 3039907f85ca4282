using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Media.Vips;

namespace Kiln.Media.Images.Resampling;

/// <summary>
/// Averages each <c>factor x factor</c> block of 8-bit pixels (any number of bands) into one, rounded: a stage mapped
/// with <see cref="VipsRowStage.Map"/> and a vertical factor of <paramref name="factor"/>. Columns and rows left over
/// at the right and bottom edges (fewer than a whole block) are dropped.
/// </summary>
/// <remarks>
/// Why not libvips' <c>shrink</c>: in 8.14 it took 70–100 ms to halve a 2725x2225 RGB image held in memory (more than
/// libjpeg's whole 1/2 decode), and its output asks for 128x128 tiles. Factor 2, what a JPEG decoded at full size for
/// the shared decode meets, reads each pair of rows once and writes the means straight out (<see cref="Halve"/>).
/// Other factors (the box before a Lanczos pass above 2x) sum the rows of a block into 16-bit lanes 32 bytes at a time,
/// then its columns the same way; at most 16x16 bytes of 255 are summed (<see cref="MaxFactor"/>), which fits 16 bits.
/// </remarks>
internal sealed unsafe class BoxShrink(int factor, int outputWidth, int bands) : IRowTransform
{
    /// <summary>The largest factor whose block sums fit 16 bits (16 x 16 x 255 = 65,280).</summary>
    public const int MaxFactor = 16;

    private readonly int _rowBytes = outputWidth * factor * bands;

    public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows)
    {
        if (factor == 2)
        {
            for (var y = 0; y < rows; y++)
            {
                var top = input + (y * 2 * inputStride);
                Halve(top, top + inputStride, output + (y * outputStride), outputWidth, bands);
            }

            return;
        }

        var sums = ArrayPool<ushort>.Shared.Rent(_rowBytes);
        try
        {
            fixed (ushort* acc = sums)
            {
                for (var y = 0; y < rows; y++)
                {
                    SumRows(input + (y * factor * inputStride), inputStride, acc);
                    SumColumns(acc, output + (y * outputStride));
                }
            }
        }
        finally
        {
            ArrayPool<ushort>.Shared.Return(sums);
        }
    }

    /// <summary>
    /// One output row of a factor-2 shrink from input rows <paramref name="top"/> and <paramref name="bottom"/>: each
    /// byte is (the sum of its band's 4 samples + 2) / 4. Reads no more than <c>2 x width x bands</c> bytes of each row
    /// and writes no more than <c>width x bands</c>.
    /// </summary>
    internal static void Halve(byte* top, byte* bottom, byte* output, int width, int bands)
    {
        var done = !Avx2.IsSupported ? 0 : bands switch
        {
            3 => HalveRgb(top, bottom, output, width),
            1 or 2 or 4 => HalvePow2(top, bottom, output, width, bands),
            _ => 0,
        };
        HalveScalar(top, bottom, output, done, width, bands);
    }

    /// <summary>Pixels [<paramref name="from"/>, <paramref name="width"/>) of <see cref="Halve"/>, one byte at a time: the fallback and the row tails.</summary>
    private static void HalveScalar(byte* top, byte* bottom, byte* output, int from, int width, int bands)
    {
        for (var x = from; x < width; x++)
        {
            var o = output + (x * bands);
            var j = x * 2 * bands;
            for (var b = 0; b < bands; b++, j++)
            {
                o[b] = (byte)((top[j] + top[j + bands] + bottom[j] + bottom[j + bands] + 2) >> 2);
            }
        }
    }

    // Bands 1, 2 and 4: a pixel pair's samples of one band are brought next to each other in their 16-byte lane
    // (bands 1 already are), then vpmaddubsw with ones adds each adjacent pair into a 16-bit lane, so one instruction
    // per row does the horizontal sum. 64 input bytes of each row make 32 output bytes.
    private static int HalvePow2(byte* top, byte* bottom, byte* output, int width, int bands)
    {
        var pairs = bands switch
        {
            2 => Vector256.Create((byte)0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15, 0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15),
            4 => Vector256.Create((byte)0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15, 0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15),
            _ => Vector256<byte>.Indices,
        };
        var outBytes = width * bands;
        var x = 0;
        for (; x + Vector256<byte>.Count <= outBytes; x += Vector256<byte>.Count)
        {
            var a = SumPairs(Avx2.Shuffle(Vector256.Load(top + (2 * x)), pairs), Avx2.Shuffle(Vector256.Load(bottom + (2 * x)), pairs));
            var b = SumPairs(Avx2.Shuffle(Vector256.Load(top + (2 * x) + 32), pairs), Avx2.Shuffle(Vector256.Load(bottom + (2 * x) + 32), pairs));

            // vpackuswb packs within 128-bit lanes (a.lo, b.lo, a.hi, b.hi); the permute restores a, b order.
            Avx2.Permute4x64(Avx2.PackUnsignedSaturate(a, b).AsUInt64(), 0b11_01_10_00).AsByte().Store(output + x);
        }

        return x / bands;
    }

    // RGB: a 16-byte lane holds two whole pixel pairs (12 bytes), shuffled to R R G G B B R R G G B B and summed by
    // vpmaddubsw as for the other band counts; each 256-bit vector is two 12-byte-apart loads. 48 input bytes of each
    // row make 24 output bytes, stored as two overlapping 16-byte writes of 12 valid bytes each.
    private static int HalveRgb(byte* top, byte* bottom, byte* output, int width)
    {
        var pairs = Vector256.Create((byte)0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, 0x80, 0x80, 0x80, 0x80, 0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11, 0x80, 0x80, 0x80, 0x80);
        var compact = Vector256.Create((byte)0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 0x80, 0x80, 0x80, 0x80);
        var outBytes = width * 3;
        var x = 0;

        // The last loads read input bytes [2x + 36, 2x + 52) and the second store writes output bytes [x + 12, x + 28).
        for (; x + 28 <= outBytes; x += 24)
        {
            var t = top + (2 * x);
            var b = bottom + (2 * x);

            // Lane order: a = output pixels 0-1 and 4-5, c = 2-3 and 6-7, so that packing a with c puts 0-3 in the low
            // lane and 4-7 in the high one.
            var a = SumPairs(Avx2.Shuffle(Load2(t, t + 24), pairs), Avx2.Shuffle(Load2(b, b + 24), pairs));
            var c = SumPairs(Avx2.Shuffle(Load2(t + 12, t + 36), pairs), Avx2.Shuffle(Load2(b + 12, b + 36), pairs));
            var packed = Avx2.Shuffle(Avx2.PackUnsignedSaturate(a, c), compact);
            packed.GetLower().Store(output + x);
            packed.GetUpper().Store(output + x + 12);
        }

        return x / 3;
    }

    private static Vector256<byte> Load2(byte* low, byte* high) => Vector256.Create(Vector128.Load(low), Vector128.Load(high));

    /// <summary>The rounded means of adjacent byte pairs of two rows, as 16-bit lanes: (t0 + t1 + b0 + b1 + 2) / 4.</summary>
    private static Vector256<short> SumPairs(Vector256<byte> top, Vector256<byte> bottom)
    {
        var ones = Vector256.Create((sbyte)1);
        var sum = Avx2.MultiplyAddAdjacent(top, ones) + Avx2.MultiplyAddAdjacent(bottom, ones) + Vector256.Create((short)2);
        return Avx2.ShiftRightLogical(sum, 2);
    }

    /// <summary>
    /// 2^32 / <paramref name="area"/> rounded up: <c>(n * Reciprocal(area)) &gt;&gt; 32</c> is <c>n / area</c> for every
    /// block sum n (below 2^17) and area up to 256.
    /// </summary>
    internal static ulong Reciprocal(int area) => ((1UL << 32) + (ulong)area - 1) / (ulong)area;

    /// <summary>acc[i] = the sum of byte i of the block's <c>factor</c> rows.</summary>
    private void SumRows(byte* first, nint stride, ushort* acc)
    {
        var vectorEnd = _rowBytes - Vector256<byte>.Count;
        for (var r = 0; r < factor; r++)
        {
            var row = first + (r * stride);
            var i = 0;
            for (; i <= vectorEnd; i += Vector256<byte>.Count)
            {
                var (low, high) = Vector256.Widen(Vector256.Load(row + i));
                if (r > 0)
                {
                    low += Vector256.Load(acc + i);
                    high += Vector256.Load(acc + i + Vector256<ushort>.Count);
                }

                low.Store(acc + i);
                high.Store(acc + i + Vector256<ushort>.Count);
            }

            for (; i < _rowBytes; i++)
            {
                acc[i] = (ushort)((r > 0 ? acc[i] : 0) + row[i]);
            }
        }
    }

    /// <summary>Each output byte: the sum of its band over the block's <c>factor</c> columns, divided by the block's size, rounded.</summary>
    /// <remarks>
    /// Why two passes: summing each output byte's <c>factor</c> columns one at a time, with an integer division per
    /// byte, cost as much as the factor-2 shrink of an image 4 times larger (factor 3 of a 1362x1112 thumbnail
    /// source). Vector adds of shifted loads turn every <c>acc[i]</c> into the sum from i over the block's columns (in
    /// place, since each lane reads only itself and lanes to its right), and the division by the area is a multiply by
    /// its rounded-up reciprocal, exact for sums below 2^17 (the error stays below 256 x 2^17 / 2^32 of a unit).
    /// </remarks>
    private void SumColumns(ushort* acc, byte* output)
    {
        var area = factor * factor;
        var half = area / 2;
        var reciprocal = Reciprocal(area);
        var pixelBytes = factor * bands;
        var span = (factor - 1) * bands;
        var i = 0;
        for (; i + Vector256<ushort>.Count + span <= _rowBytes; i += Vector256<ushort>.Count)
        {
            var sum = Vector256.Load(acc + i);
            for (var dx = bands; dx <= span; dx += bands)
            {
                sum += Vector256.Load(acc + i + dx);
            }

            sum.Store(acc + i);
        }

        for (; i + span < _rowBytes; i++)
        {
            for (var dx = bands; dx <= span; dx += bands)
            {
                acc[i] += acc[i + dx];
            }
        }

        if (bands == 3)
        {
            // The usual case (RGB), unrolled: the loop over bands below took 1.3x as long (box-shrink --factor 3).
            for (var x = 0; x < outputWidth; x++, acc += pixelBytes, output += 3)
            {
                output[0] = (byte)(((ulong)(acc[0] + half) * reciprocal) >> 32);
                output[1] = (byte)(((ulong)(acc[1] + half) * reciprocal) >> 32);
                output[2] = (byte)(((ulong)(acc[2] + half) * reciprocal) >> 32);
            }

            return;
        }

        for (var x = 0; x < outputWidth; x++, acc += pixelBytes, output += bands)
        {
            for (var b = 0; b < bands; b++)
            {
                output[b] = (byte)(((ulong)(acc[b] + half) * reciprocal) >> 32);
            }
        }
    }
}
