using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Media.Vips;

namespace Kiln.Media.Images.Resampling;

/// <summary>
/// Horizontal Lanczos3 reduction of 8-bit, 3-band (RGB) rows, vectorised with SSSE3.
/// </summary>
/// <remarks>
/// Why this exists: libvips 8.14 (Debian 12) vectorises only the vertical pass (<c>reducev</c>, through orc); its
/// horizontal pass (<c>reduceh</c>) is scalar C and took about half of the resize benchmark's time (11 ms of a
/// 1363 to 720 pixel reduction, against 3 ms for the vertical pass). Newer libvips versions vectorise both.
/// Each output pixel is a weighted sum of a window of input pixels; weights are 14-bit fixed point. Four taps
/// (12 bytes) are read per step: two byte shuffles turn them into [R0 R1 G0 G1 B0 B1 0 0]-style 16-bit lanes and
/// <c>pmaddwd</c> multiplies and adds pairs, giving R, G and B sums in three 32-bit lanes.
/// </remarks>
internal sealed unsafe class HorizontalLanczos3 : IRowTransform
{
    private const int Bands = 3;
    private const int Precision = Lanczos3Weights.Precision;

    private readonly int _inWidth;
    private readonly int _outWidth;
    private readonly int _groups;
    private readonly int[] _starts;
    private readonly Vector128<short>[] _weights;

    // The same weights for two neighbouring output pixels side by side, one per 128-bit lane, for AVX2.
    private readonly Vector256<short>[] _pairWeights;

    private HorizontalLanczos3(int inWidth, int outWidth)
    {
        _inWidth = inWidth;
        _outWidth = outWidth;
        var scale = (double)inWidth / outWidth;
        var maxTaps = Lanczos3Weights.MaxTaps(scale);
        _groups = (maxTaps + 3) / 4;
        var window = _groups * 4;
        _starts = new int[outWidth];
        _weights = new Vector128<short>[outWidth * _groups * 2];

        Span<short> taps = stackalloc short[maxTaps];
        Span<short> fixedTaps = stackalloc short[window];
        for (var x = 0; x < outWidth; x++)
        {
            var (first, count) = Lanczos3Weights.For(x, inWidth, scale, taps);

            // The window is read whole, so near the right edge it starts earlier to stay inside the row;
            // the taps sit at their offset in it and the rest of the window weighs zero.
            var start = Math.Max(0, Math.Min(first, inWidth - window));
            fixedTaps.Clear();
            taps[..count].CopyTo(fixedTaps[(first - start)..]);
            _starts[x] = start;
            for (var g = 0; g < _groups; g++)
            {
                var t = fixedTaps.Slice(g * 4, 4);
                _weights[((x * _groups) + g) * 2] = Vector128.Create(t[0], t[1], t[0], t[1], t[0], t[1], 0, 0);
                _weights[((x * _groups) + g) * 2 + 1] = Vector128.Create(t[2], t[3], t[2], t[3], t[2], t[3], 0, 0);
            }
        }

        _pairWeights = new Vector256<short>[outWidth / 2 * _groups * 2];
        for (var pair = 0; pair < outWidth / 2; pair++)
        {
            for (var i = 0; i < _groups * 2; i++)
            {
                _pairWeights[(pair * _groups * 2) + i] = Vector256.Create(
                    _weights[(2 * pair * _groups * 2) + i], _weights[(((2 * pair) + 1) * _groups * 2) + i]);
            }
        }
    }

    /// <summary>True when this CPU and these sizes can take the vectorised path.</summary>
    public static bool CanReduce(int inWidth, int outWidth, int bands) =>
        Ssse3.IsSupported && bands == Bands && outWidth < inWidth && inWidth >= WindowFor(inWidth, outWidth);

    public static HorizontalLanczos3 For(int inWidth, int outWidth)
    {
        return ReductionCache<HorizontalLanczos3>.Get(inWidth, outWidth, static key => new HorizontalLanczos3(key.In, key.Out));
    }

    /// <summary>
    /// Reduces <paramref name="rows"/> rows. Pixels are stored 4 bytes at a time, the fourth overwritten by the
    /// next pixel; a row's last pixel is stored as exactly 3 bytes, so nothing is written past a row.
    /// </summary>
    public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows) =>
        Reduce(input, inputStride, output, outputStride, rows, Avx2.IsSupported);

    /// <summary>As <see cref="Transform"/>; <paramref name="useAvx2"/> false forces the SSSE3 path (tests compare both).</summary>
    internal void Reduce(byte* source, nint sourceStride, byte* destination, nint destinationStride, int rows, bool useAvx2)
    {
        if (rows <= 0)
        {
            return;
        }

        // The last 16-byte read of a row may reach 4 bytes past its end: harmless inside the image, but past the
        // last row it would leave the buffer, so that row is reduced from a padded copy.
        ReduceRows(source, sourceStride, destination, destinationStride, rows - 1, useAvx2);
        var rowBytes = _inWidth * Bands;
        var padded = (byte*)NativeMemory.Alloc((nuint)rowBytes + 16);
        try
        {
            Buffer.MemoryCopy(source + ((rows - 1) * sourceStride), padded, rowBytes, rowBytes);
            ReduceRows(padded, rowBytes, destination + ((rows - 1) * destinationStride), destinationStride, 1, useAvx2);
        }
        finally
        {
            NativeMemory.Free(padded);
        }
    }

    private void ReduceRows(byte* source, nint sourceStride, byte* destination, nint destinationStride, int rows, bool useAvx2)
    {
        if (useAvx2 && Avx2.IsSupported)
        {
            ReduceRowsInPairs(source, sourceStride, destination, destinationStride, rows);
            return;
        }

        ReduceRowsSingly(source, sourceStride, destination, destinationStride, rows, 0);
    }

    /// <summary>AVX2: two output pixels per step, one in each 128-bit lane; an odd last pixel goes the SSSE3 way.</summary>
    private void ReduceRowsInPairs(byte* source, nint sourceStride, byte* destination, nint destinationStride, int rows)
    {
        var pairsLow = Vector256.Create(Vector128.Create((byte)0, 0x80, 3, 0x80, 1, 0x80, 4, 0x80, 2, 0x80, 5, 0x80, 0x80, 0x80, 0x80, 0x80));
        var pairsHigh = Vector256.Create(Vector128.Create((byte)6, 0x80, 9, 0x80, 7, 0x80, 10, 0x80, 8, 0x80, 11, 0x80, 0x80, 0x80, 0x80, 0x80));
        var half = Vector256.Create(1 << (Precision - 1));
        var pairs = _outWidth / 2;
        var lastPixel = _outWidth - 1;
        fixed (Vector256<short>* weights = _pairWeights)
        fixed (int* starts = _starts)
        {
            for (var y = 0; y < rows; y++)
            {
                var row = source + (y * sourceStride);
                var output = destination + (y * destinationStride);
                var w = weights;
                for (var pair = 0; pair < pairs; pair++)
                {
                    var x = pair * 2;
                    var left = row + (starts[x] * Bands);
                    var right = row + (starts[x + 1] * Bands);
                    var sum = half;
                    for (var g = 0; g < _groups; g++)
                    {
                        var pixels = Vector256.Create(Sse2.LoadVector128(left), Sse2.LoadVector128(right));
                        sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(Avx2.Shuffle(pixels, pairsLow).AsInt16(), w[0]));
                        sum = Avx2.Add(sum, Avx2.MultiplyAddAdjacent(Avx2.Shuffle(pixels, pairsHigh).AsInt16(), w[1]));
                        w += 2;
                        left += 4 * Bands;
                        right += 4 * Bands;
                    }

                    var shifted = Avx2.ShiftRightArithmetic(sum, Precision);
                    var words = Avx2.PackSignedSaturate(shifted, shifted);
                    var bytes = Avx2.PackUnsignedSaturate(words, words).AsUInt32();
                    *(uint*)(output + (x * Bands)) = bytes.GetElement(0);
                    var second = bytes.GetElement(4);
                    if (x + 1 < lastPixel)
                    {
                        *(uint*)(output + ((x + 1) * Bands)) = second;
                    }
                    else
                    {
                        // The row's last pixel: exactly three bytes (see ReduceRowsSingly).
                        *(ushort*)(output + ((x + 1) * Bands)) = (ushort)second;
                        output[((x + 1) * Bands) + 2] = (byte)(second >> 16);
                    }
                }
            }
        }

        if (_outWidth % 2 == 1)
        {
            ReduceRowsSingly(source, sourceStride, destination, destinationStride, rows, _outWidth - 1);
        }
    }

    private void ReduceRowsSingly(byte* source, nint sourceStride, byte* destination, nint destinationStride, int rows, int firstPixel)
    {
        var pairsLow = Vector128.Create((byte)0, 0x80, 3, 0x80, 1, 0x80, 4, 0x80, 2, 0x80, 5, 0x80, 0x80, 0x80, 0x80, 0x80);
        var pairsHigh = Vector128.Create((byte)6, 0x80, 9, 0x80, 7, 0x80, 10, 0x80, 8, 0x80, 11, 0x80, 0x80, 0x80, 0x80, 0x80);
        var half = Vector128.Create(1 << (Precision - 1));
        fixed (Vector128<short>* weights = _weights)
        fixed (int* starts = _starts)
        {
            for (var y = 0; y < rows; y++)
            {
                var row = source + (y * sourceStride);
                var output = destination + (y * destinationStride);
                var w = weights + (firstPixel * _groups * 2);
                for (var x = firstPixel; x < _outWidth; x++)
                {
                    var p = row + (starts[x] * Bands);
                    var sum = half;
                    for (var g = 0; g < _groups; g++)
                    {
                        var pixels = Sse2.LoadVector128(p);
                        sum = Sse2.Add(sum, Sse2.MultiplyAddAdjacent(Ssse3.Shuffle(pixels, pairsLow).AsInt16(), w[0]));
                        sum = Sse2.Add(sum, Sse2.MultiplyAddAdjacent(Ssse3.Shuffle(pixels, pairsHigh).AsInt16(), w[1]));
                        w += 2;
                        p += 4 * Bands;
                    }

                    var shifted = Sse2.ShiftRightArithmetic(sum, Precision);
                    var words = Sse2.PackSignedSaturate(shifted, shifted);
                    var rgb = Sse2.PackUnsignedSaturate(words, words).AsUInt32().ToScalar();
                    if (x < _outWidth - 1)
                    {
                        *(uint*)(output + (x * Bands)) = rgb;
                    }
                    else
                    {
                        // The row's last pixel: exactly three bytes, since the next row may already be written or
                        // the buffer may end here.
                        *(ushort*)(output + (x * Bands)) = (ushort)rgb;
                        output[(x * Bands) + 2] = (byte)(rgb >> 16);
                    }
                }
            }
        }
    }

    private static int WindowFor(int inWidth, int outWidth) => (Lanczos3Weights.MaxTaps((double)inWidth / outWidth) + 3) / 4 * 4;
}
