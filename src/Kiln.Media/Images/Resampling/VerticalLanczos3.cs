using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Kiln.Media.Vips;

namespace Kiln.Media.Images.Resampling;

/// <summary>
/// Vertical Lanczos3 reduction of 8-bit rows (any number of bands): each output row is a weighted sum of a window of
/// input rows, in 14-bit fixed point, vectorised with AVX2 across the row.
/// </summary>
/// <remarks>
/// Why not libvips' <c>reducev</c>: in 8.14 every <c>reducev</c> operation compiles its orc programs when it is built,
/// ~1 ms of the ~1.5 ms it takes to set up a resize, and on the path of a single image that time is not overlapped with
/// anything (docs/benchmarks.md "Plain JPEG with one image in flight"). The weights come from
/// <see cref="Lanczos3Weights"/>, as the horizontal pass's do, and are kept per size pair.
/// </remarks>
internal sealed unsafe class VerticalLanczos3 : IRowWindowTransform
{
    private const int Precision = Lanczos3Weights.Precision;

    private readonly int[] _first;
    private readonly int[] _count;
    private readonly short[] _weights;
    private readonly int _maxTaps;

    private VerticalLanczos3(int inHeight, int outHeight)
    {
        var scale = (double)inHeight / outHeight;
        _maxTaps = Lanczos3Weights.MaxTaps(scale);
        _first = new int[outHeight];
        _count = new int[outHeight];
        _weights = new short[outHeight * _maxTaps];
        for (var y = 0; y < outHeight; y++)
        {
            (_first[y], _count[y]) = Lanczos3Weights.For(y, inHeight, scale, _weights.AsSpan(y * _maxTaps, _maxTaps));
        }
    }

    /// <summary>The reduction from <paramref name="inHeight"/> to <paramref name="outHeight"/> rows (kept for reuse).</summary>
    public static VerticalLanczos3 For(int inHeight, int outHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outHeight, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(outHeight, inHeight);
        return ReductionCache<VerticalLanczos3>.Get(inHeight, outHeight, static key => new VerticalLanczos3(key.In, key.Out));
    }

    public (int First, int Count) Window(int top, int rows)
    {
        var last = top + rows - 1;
        return (_first[top], _first[last] + _count[last] - _first[top]);
    }

    public void Transform(byte* input, nint inputStride, int first, byte* output, nint outputStride, int top, int rows, int bytes) =>
        Reduce(input, inputStride, first, output, outputStride, top, rows, bytes, Avx2.IsSupported);

    /// <summary>As <see cref="Transform"/>; <paramref name="useAvx2"/> false forces the scalar path (tests compare both); true on a CPU without AVX2 still runs scalar, as in HorizontalLanczos3.</summary>
    internal void Reduce(byte* input, nint inputStride, int first, byte* output, nint outputStride, int top, int rows, int bytes, bool useAvx2)
    {
        for (var y = top; y < top + rows; y++)
        {
            var source = input + ((_first[y] - first) * inputStride);
            var target = output + ((y - top) * outputStride);
            fixed (short* weights = &_weights[y * _maxTaps])
            {
                var done = useAvx2 && Avx2.IsSupported ? ReduceRowAvx2(source, inputStride, _count[y], weights, target, bytes) : 0;
                ReduceRowScalar(source, inputStride, _count[y], weights, target, done, bytes);
            }
        }
    }

    /// <summary>Sixteen bytes of the row at a time; returns how many bytes it wrote (a multiple of 16).</summary>
    private static int ReduceRowAvx2(byte* source, nint stride, int count, short* weights, byte* target, int bytes)
    {
        var x = 0;
        var rounding = Vector256.Create(1 << (Precision - 1));
        for (; x + 16 <= bytes; x += 16)
        {
            var (low, high) = (rounding, rounding);
            var k = 0;
            for (; k + 1 < count; k += 2)
            {
                // Rows k and k+1 side by side in 16-bit lanes, multiplied by their two weights and added in pairs.
                var a = Avx2.ConvertToVector256Int16(source + (k * stride) + x);
                var b = Avx2.ConvertToVector256Int16(source + ((k + 1) * stride) + x);
                var w = Vector256.Create((int)(ushort)weights[k] | (weights[k + 1] << 16)).AsInt16();
                low = Avx2.Add(low, Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(a, b), w));
                high = Avx2.Add(high, Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(a, b), w));
            }

            if (k < count)
            {
                var a = Avx2.ConvertToVector256Int16(source + (k * stride) + x);
                var w = Vector256.Create((int)(ushort)weights[k]).AsInt16();
                low = Avx2.Add(low, Avx2.MultiplyAddAdjacent(Avx2.UnpackLow(a, Vector256<short>.Zero), w));
                high = Avx2.Add(high, Avx2.MultiplyAddAdjacent(Avx2.UnpackHigh(a, Vector256<short>.Zero), w));
            }

            // Unpacking and packing both work within 128-bit lanes, so the samples come back in order per lane; the
            // permute joins the two lanes' eight bytes.
            var words = Avx2.PackSignedSaturate(Avx2.ShiftRightArithmetic(low, Precision), Avx2.ShiftRightArithmetic(high, Precision));
            var packed = Avx2.PackUnsignedSaturate(words, words);
            var ordered = Avx2.Permute4x64(packed.AsUInt64(), 0b_00_00_10_00).AsByte();
            ordered.GetLower().Store(target + x);
        }

        return x;
    }

    private static void ReduceRowScalar(byte* source, nint stride, int count, short* weights, byte* target, int from, int bytes)
    {
        for (var x = from; x < bytes; x++)
        {
            var sum = 1 << (Precision - 1);
            for (var k = 0; k < count; k++)
            {
                sum += source[(k * stride) + x] * weights[k];
            }

            target[x] = (byte)Math.Clamp(sum >> Precision, 0, 255);
        }
    }
}
