using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// Computes rows of an 8-bit image from the same rows of another: one row in, one row out (or, for a stage mapped
/// with a vertical factor f, f rows in for each row out).
/// </summary>
internal unsafe interface IRowTransform
{
    /// <summary>
    /// Transforms <paramref name="rows"/> whole output rows from f times as many input rows. Strides are in bytes. The
    /// last input row may end at the end of its buffer, so nothing may be read past it; nothing may be written past
    /// the last output row.
    /// </summary>
    void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows);
}

/// <summary>
/// A libvips pipeline stage whose pixels come from managed code: libvips asks it for strips of rows through a
/// generate callback, as it asks its own operations.
/// </summary>
/// <remarks>
/// Why: a stage inside the pipeline lets libvips' savers overlap work. A saver computes the next strip on a worker
/// thread while a background thread encodes the previous one, so decoding, resampling and encoding run at once.
/// The alternative, computing the whole image in managed code first and saving it afterwards, runs them one after
/// the other. Pixels are read and written in place through <c>VipsRegion</c>'s public fields, as libvips'
/// <c>VIPS_REGION_ADDR</c> macro does. The field offsets are checked once against the running libvips
/// (<see cref="IsAvailable"/>); if they do not match, callers must not use this class.
/// </remarks>
internal static unsafe class VipsRowStage
{
    // VipsRegion (libvips/region.h, 64-bit): VipsObject parent (80 bytes), VipsImage *im, VipsRect valid,
    // RegionType type (+4 padding), VipsPel *data, int bpl. vips_region_width() reads offset 96 = valid.width.
    private const int ImageOffset = 80;
    internal const int ValidOffset = 88;
    private const int DataOffset = 112;
    private const int StrideOffset = 120;

    // VipsDemandStyle: the output is computed in strips of whole rows, like libvips' own resamplers.
    private const int DemandThinStrip = 2;

    private static readonly Lazy<bool> LayoutMatches = new(CheckLayout);

    /// <summary>True when the running libvips lays out <c>VipsRegion</c> as this class expects.</summary>
    public static bool IsAvailable => LayoutMatches.Value;

    /// <summary>
    /// A new image <paramref name="outputWidth"/> pixels wide, as high as <paramref name="input"/> divided by
    /// <paramref name="verticalFactor"/> (rounded down) and with <paramref name="outputBands"/> bands (the input's when
    /// omitted), computed lazily by <paramref name="transform"/>. It holds its own reference to the input.
    /// </summary>
    public static VipsImage Map(VipsImage input, int outputWidth, IRowTransform transform, int outputBands = 0, int verticalFactor = 1)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(transform);
        ArgumentOutOfRangeException.ThrowIfLessThan(outputWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(verticalFactor, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(verticalFactor, input.Height);
        if (input.Format != 0)
        {
            throw new ArgumentException("Only 8-bit images can be mapped row by row.", nameof(input));
        }

        if (!IsAvailable)
        {
            throw new InvalidOperationException("This libvips' VipsRegion layout is not the one VipsRowStage was written for.");
        }

        outputBands = outputBands > 0 ? outputBands : input.Bands;
        var (inputWidth, inputBands) = (input.Width, input.Bands);
        return Generated(
            input,
            outputWidth,
            input.Height / verticalFactor,
            outputBands,
            inputRef => new Stage(inputRef, transform, inputWidth, outputWidth, inputBands, outputBands, verticalFactor),
            &Generate);
    }

    /// <summary>
    /// A new image of the given size whose strips of rows <paramref name="generate"/> computes from regions of
    /// <paramref name="input"/>, with the input's metadata: the plumbing every managed stage shares. The stage's state
    /// holds its own reference to the input (given to <paramref name="state"/>) until the output closes.
    /// </summary>
    internal static VipsImage Generated(
        VipsImage input,
        int width,
        int height,
        int bands,
        Func<nint, StageState> state,
        delegate* unmanaged<nint, nint, nint, nint, int*, int> generate)
    {
        var inputPtr = input.Handle.DangerousGetHandle();
        var output = VipsNative.vips_image_new();
        if (output == nint.Zero)
        {
            throw VipsException.FromBuffer("image_new");
        }

        var image = new VipsImage(new VipsImageHandle(output));
        try
        {
            // The "close" handler, connected first, releases the input reference and the state on every path,
            // failures included.
            var stage = GCHandle.ToIntPtr(GCHandle.Alloc(state(VipsNative.g_object_ref(inputPtr))));
            VipsNative.g_signal_connect_data(output, "close", &Close, stage, nint.Zero, 0);

            // The first call copies the input's fields (metadata included); the second, with no input, sets the
            // demand style to thin strips even when the input's is small tiles (libvips keeps the most restrictive of
            // the inputs', and e.g. shrink's output asks for 128x128 tiles). Tiles would make every strip of whole rows
            // be computed again for each tile across (measured: 8x the rows through a Lanczos stage).
            var inputs = stackalloc nint[] { inputPtr, nint.Zero };
            if (VipsNative.vips_image_pipeline_array(output, DemandThinStrip, inputs) != 0
                || VipsNative.vips_image_pipeline_array(output, DemandThinStrip, inputs + 1) != 0)
            {
                throw VipsException.FromBuffer("image_pipeline_array");
            }

            VipsNative.vips_image_init_fields(
                output,
                width,
                height,
                bands,
                0,
                0,
                VipsNative.vips_image_get_interpretation(inputPtr),
                VipsNative.vips_image_get_xres(inputPtr),
                VipsNative.vips_image_get_yres(inputPtr));
            if (VipsNative.vips_image_generate(output, &Start, generate, &Stop, inputPtr, stage) != 0)
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
            var wanted = *(VipsRect*)(outRegion + ValidOffset);
            var factor = stage.VerticalFactor;
            var need = new VipsRect { Left = 0, Top = wanted.Top * factor, Width = stage.InputWidth, Height = wanted.Height * factor };
            if (VipsNative.vips_region_prepare(sequence, &need) != 0)
            {
                return -1;
            }

            var source = Address(sequence, 0, need.Top, stage.InputBands);
            var sourceStride = Stride(sequence);
            var target = Address(outRegion, wanted.Left, wanted.Top, stage.OutputBands);
            var targetStride = Stride(outRegion);
            if (wanted.Left == 0 && wanted.Width == stage.OutputWidth)
            {
                stage.Transform.Transform(source, sourceStride, target, targetStride, wanted.Height);
                return 0;
            }

            // Part of a row was asked for (a crop downstream): compute whole rows aside and copy the part.
            var rowBytes = (nint)stage.OutputWidth * stage.OutputBands;
            var scratch = (byte*)NativeMemory.Alloc((nuint)(rowBytes * wanted.Height));
            try
            {
                stage.Transform.Transform(source, sourceStride, scratch, rowBytes, wanted.Height);
                CopyColumns(scratch, rowBytes, wanted.Left, wanted.Width, wanted.Height, stage.OutputBands, target, targetStride);
            }
            finally
            {
                NativeMemory.Free(scratch);
            }

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
        VipsNative.g_object_unref(((StageState)handle.Target!).Input);
        handle.Free();
    }

    /// <summary>What <c>VIPS_REGION_ADDR(region, x, y)</c> computes.</summary>
    internal static byte* Address(nint region, int x, int y, int bands)
    {
        var valid = *(VipsRect*)(region + ValidOffset);
        var data = *(byte**)(region + DataOffset);
        return data + ((y - valid.Top) * Stride(region)) + ((nint)(x - valid.Left) * bands);
    }

    /// <summary>The region's bytes per line (<c>VIPS_REGION_LSKIP</c>).</summary>
    internal static nint Stride(nint region) => *(int*)(region + StrideOffset);

    /// <summary>
    /// Copies columns [left, left + width) of <paramref name="height"/> whole rows made aside into a region that asked
    /// for only part of each row (a crop downstream).
    /// </summary>
    internal static void CopyColumns(byte* rows, nint rowBytes, int left, int width, int height, int pixelBytes, byte* target, nint targetStride)
    {
        for (var y = 0; y < height; y++)
        {
            Buffer.MemoryCopy(rows + (y * rowBytes) + ((nint)left * pixelBytes), target + (y * targetStride), targetStride, (long)width * pixelBytes);
        }
    }

    private static bool CheckLayout()
    {
        VipsRuntime.EnsureInitialized();
        if (nint.Size != 8)
        {
            return false;
        }

        // A 4x4 RGB image whose every byte differs, and a 2x2 region of it at (1, 2).
        var pixels = new byte[4 * 4 * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i + 1);
        }

        using var image = VipsImage.FromBytes(pixels, 4, 4, 3);
        using var region = new GObjectHandle(VipsNative.vips_region_new(image.Handle.DangerousGetHandle()));
        if (region.IsInvalid)
        {
            VipsNative.vips_error_clear();
            return false;
        }

        var ptr = region.DangerousGetHandle();
        var rect = new VipsRect { Left = 1, Top = 2, Width = 2, Height = 2 };
        if (VipsNative.vips_region_prepare(ptr, &rect) != 0)
        {
            VipsNative.vips_error_clear();
            return false;
        }

        var valid = *(VipsRect*)(ptr + ValidOffset);
        if (*(nint*)(ptr + ImageOffset) != image.Handle.DangerousGetHandle()
            || valid.Width != VipsNative.vips_region_width(ptr)
            || valid.Height != VipsNative.vips_region_height(ptr)
            || (valid.Left, valid.Top, valid.Width, valid.Height) != (1, 2, 2, 2))
        {
            return false;
        }

        var corner = Address(ptr, 1, 2, 3);
        var last = Address(ptr, 2, 3, 3);
        return Stride(ptr) >= 6 && corner[0] == pixels[((2 * 4) + 1) * 3] && last[0] == pixels[((3 * 4) + 2) * 3]
            && last[2] == pixels[(((3 * 4) + 2) * 3) + 2];
    }

    /// <summary>What a managed stage's callbacks get: at least the reference to its input that it holds.</summary>
    internal class StageState(nint input)
    {
        public nint Input { get; } = input;
    }

    private sealed class Stage(nint input, IRowTransform transform, int inputWidth, int outputWidth, int inputBands, int outputBands, int verticalFactor)
        : StageState(input)
    {
        public int VerticalFactor { get; } = verticalFactor;

        public IRowTransform Transform { get; } = transform;

        public int InputWidth { get; } = inputWidth;

        public int OutputWidth { get; } = outputWidth;

        public int InputBands { get; } = inputBands;

        public int OutputBands { get; } = outputBands;
    }
}
