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
    // VipsDemandStyle: strips of whole rows, like VipsRowStage (tiles would recompute each window for every tile across).
    private const int DemandThinStrip = 2;

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

        var inputPtr = input.Handle.DangerousGetHandle();
        var output = VipsNative.vips_image_new();
        if (output == nint.Zero)
        {
            throw VipsException.FromBuffer("image_new");
        }

        var image = new VipsImage(new VipsImageHandle(output));
        try
        {
            // As in VipsRowStage: the "close" handler, connected first, releases the input and the transform on every path.
            var stage = GCHandle.ToIntPtr(GCHandle.Alloc(new Stage(VipsNative.g_object_ref(inputPtr), transform, input.Bands)));
            VipsNative.g_signal_connect_data(output, "close", &Close, stage, nint.Zero, 0);
            var inputs = stackalloc nint[] { inputPtr, nint.Zero };
            if (VipsNative.vips_image_pipeline_array(output, DemandThinStrip, inputs) != 0
                || VipsNative.vips_image_pipeline_array(output, DemandThinStrip, inputs + 1) != 0)
            {
                throw VipsException.FromBuffer("image_pipeline_array");
            }

            VipsNative.vips_image_init_fields(
                output,
                input.Width,
                outputHeight,
                input.Bands,
                0,
                0,
                VipsNative.vips_image_get_interpretation(inputPtr),
                VipsNative.vips_image_get_xres(inputPtr),
                VipsNative.vips_image_get_yres(inputPtr));
            if (VipsNative.vips_image_generate(output, &Start, &Generate, &Stop, inputPtr, stage) != 0)
            {
                throw VipsException.FromBuffer("image_generate");
            }

            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    [UnmanagedCallersOnly]
    private static nint Start(nint output, nint input, nint stage) => VipsNative.vips_region_new(input);

    [UnmanagedCallersOnly]
    private static int Stop(nint sequence, nint input, nint stage)
    {
        VipsNative.g_object_unref(sequence);
        return 0;
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

    [UnmanagedCallersOnly]
    private static void Close(nint output, nint data)
    {
        var handle = GCHandle.FromIntPtr(data);
        VipsNative.g_object_unref(((Stage)handle.Target!).Input);
        handle.Free();
    }

    private sealed class Stage(nint input, IRowWindowTransform transform, int bands)
    {
        public nint Input { get; } = input;

        public IRowWindowTransform Transform { get; } = transform;

        public int Bands { get; } = bands;
    }
}
