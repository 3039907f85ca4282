using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>Computes rows of an 8-bit image each from a window of rows of another (a vertical resampler).</summary>
internal unsafe interface IRowWindowTransform
{
    /// <summary>The input rows [First, First + Count) that output rows [top, top + rows) are computed from.</summary>
    (int First, int Count) Window(int top, int rows);

    /// <summary>
    /// Computes output rows [top, top + rows), <paramref name="bytes"/> bytes of each, from the input rows of
    /// <see cref="Window"/>, the first of which (<paramref name="first"/>) <paramref name="input"/> points at.
    /// </summary>
    void Transform(byte* input, nint inputStride, int first, byte* output, nint outputStride, int top, int rows, int bytes);
}

/// <summary>
/// A libvips pipeline stage whose rows come from a window of its input's rows, computed by managed code: the vertical
/// counterpart of <see cref="VipsRowStage"/>, with its region layout (<see cref="VipsRowStage.IsAvailable"/>).
/// </summary>
internal static unsafe class VipsWindowStage
{
    /// <summary>
    /// A new image as wide as <paramref name="input"/> and <paramref name="outputHeight"/> rows high, computed lazily by
    /// <paramref name="transform"/>. It holds its own reference to the input.
    /// </summary>
    public static VipsImage Map(VipsImage input, int outputHeight, IRowWindowTransform transform)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputHeight, 1);
        if (input.Format != 0 || !VipsRowStage.IsAvailable)
        {
            throw new ArgumentException("Only 8-bit images on a libvips whose VipsRegion layout is known can be mapped.", nameof(input));
        }

        var bands = input.Bands;
        return VipsRowStage.Generated(input, input.Width, outputHeight, bands, inputRef => new Stage(inputRef, transform, bands), &Generate);
    }

    [UnmanagedCallersOnly]
    private static int Generate(nint outRegion, nint sequence, nint input, nint stageHandle, int* stop)
    {
        try
        {
            var stage = (Stage)GCHandle.FromIntPtr(stageHandle).Target!;
            var wanted = *(VipsRect*)(outRegion + VipsRowStage.ValidOffset);
            var (first, count) = stage.Transform.Window(wanted.Top, wanted.Height);
            var need = new VipsRect { Left = wanted.Left, Top = first, Width = wanted.Width, Height = count };
            if (VipsNative.vips_region_prepare(sequence, &need) != 0)
            {
                return -1;
            }

            stage.Transform.Transform(
                VipsRowStage.Address(sequence, wanted.Left, first, stage.Bands),
                VipsRowStage.Stride(sequence),
                first,
                VipsRowStage.Address(outRegion, wanted.Left, wanted.Top, stage.Bands),
                VipsRowStage.Stride(outRegion),
                wanted.Top,
                wanted.Height,
                wanted.Width * stage.Bands);
            return 0;
        }
#pragma warning disable CA1031 // An exception must not cross into libvips' thread; -1 makes the saver fail cleanly.
        catch (Exception)
#pragma warning restore CA1031
        {
            return -1;
        }
    }

    private sealed class Stage(nint input, IRowWindowTransform transform, int bands) : VipsRowStage.StageState(input)
    {
        public IRowWindowTransform Transform { get; } = transform;

        public int Bands { get; } = bands;
    }
}
