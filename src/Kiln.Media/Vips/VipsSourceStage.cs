using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>Produces an image's rows top to bottom, once: a decoder.</summary>
internal unsafe interface IRowSource : IDisposable
{
    /// <summary>
    /// Writes the next <paramref name="rows"/> whole rows, starting at <paramref name="top"/>, into
    /// <paramref name="output"/> (<paramref name="stride"/> bytes apart). Calls come in order, each starting where
    /// the previous one ended. Throws <see cref="InvalidDataException"/> on data it cannot decode.
    /// </summary>
    void ReadRows(int top, int rows, byte* output, nint stride);
}

/// <summary>
/// The first stage of a libvips pipeline with pixels decoded by managed code, behind libvips' <c>sequential</c>
/// line cache, exactly as libvips' own streaming loaders are built: the decoder sees whole strips in order, and
/// the stages after it read rows in any overlapping pattern a resampler needs.
/// </summary>
internal static unsafe class VipsSourceStage
{
    private const int DemandThinStrip = 2;

    // Rows per strip of the line cache in front of the decoder (libvips' PNG loader uses 8 or 16).
    private const int TileHeight = 16;

    /// <summary>
    /// A sequential image with <paramref name="header"/>'s size, format and metadata (libvips' loader's header, whose
    /// pixels are never asked for) whose rows <paramref name="source"/> decodes when a sink pulls them. The image owns
    /// the source and disposes of it when libvips closes the image.
    /// </summary>
    public static VipsImage Create(VipsImage header, IRowSource source)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(source);
        var sampleBytes = header.Format switch { 0 => 1, 2 => 2, _ => 0 };
        if (sampleBytes == 0 || !VipsRowStage.IsAvailable)
        {
            source.Dispose();
            throw new InvalidOperationException("Only 8- and 16-bit images on a libvips whose VipsRegion layout is known can have a managed source.");
        }

        var output = VipsNative.vips_image_new();
        if (output == nint.Zero)
        {
            source.Dispose();
            throw VipsException.FromBuffer("image_new");
        }

        using var image = new VipsImage(new VipsImageHandle(output));
        // The stage holds a reference to the header image: libvips links a pipeline to its inputs but does not own them.
        var headerPtr = header.Handle.DangerousGetHandle();
        var stage = GCHandle.ToIntPtr(GCHandle.Alloc(
            new Stage(VipsNative.g_object_ref(headerPtr), source, header.Width, header.Bands * sampleBytes)));
        VipsNative.g_signal_connect_data(output, "close", &Close, stage, nint.Zero, 0);

        // Copies the header's fields and metadata (ICC profile, orientation, resolution) to the new image.
        var inputs = stackalloc nint[] { headerPtr, nint.Zero };
        if (VipsNative.vips_image_pipeline_array(output, DemandThinStrip, inputs) != 0)
        {
            throw VipsException.FromBuffer("image_pipeline_array");
        }

        if (VipsNative.vips_image_generate(output, null, &Generate, null, nint.Zero, stage) != 0)
        {
            throw VipsException.FromBuffer("image_generate");
        }

        return VipsOperation.Run("sequential", ("in", image), ("tile_height", TileHeight));
    }

    [UnmanagedCallersOnly]
    private static int Generate(nint outRegion, nint sequence, nint a, nint stageHandle, int* stop)
    {
        var stage = (Stage)GCHandle.FromIntPtr(stageHandle).Target!;
        lock (stage)
        {
            try
            {
                var wanted = *(VipsRect*)(outRegion + VipsRowStage.ValidOffset);
                if (stage.Failed is { } failed)
                {
                    return Fail(failed);
                }

                if (wanted.Top != stage.NextRow)
                {
                    return Fail($"out of order read at line {stage.NextRow} (asked for line {wanted.Top})");
                }

                var target = VipsRowStage.Address(outRegion, wanted.Left, wanted.Top, stage.PixelBytes);
                var targetStride = VipsRowStage.Stride(outRegion);
                if (wanted.Left == 0 && wanted.Width == stage.Width)
                {
                    stage.Source.ReadRows(wanted.Top, wanted.Height, target, targetStride);
                }
                else
                {
                    // Part of a row was asked for: decode whole rows aside and copy the part.
                    var rowBytes = (nint)stage.Width * stage.PixelBytes;
                    var scratch = (byte*)NativeMemory.Alloc((nuint)(rowBytes * wanted.Height));
                    try
                    {
                        stage.Source.ReadRows(wanted.Top, wanted.Height, scratch, rowBytes);
                        VipsRowStage.CopyColumns(scratch, rowBytes, wanted.Left, wanted.Width, wanted.Height, stage.PixelBytes, target, targetStride);
                    }
                    finally
                    {
                        NativeMemory.Free(scratch);
                    }
                }

                stage.NextRow = wanted.Top + wanted.Height;
                return 0;
            }
#pragma warning disable CA1031 // An exception must not cross into libvips' thread; its message goes to libvips' error buffer.
            catch (Exception e)
#pragma warning restore CA1031
            {
                stage.Failed = e is InvalidDataException or EndOfStreamException ? e.Message : $"{e.GetType().Name}: {e.Message}";
                return Fail(stage.Failed);
            }
        }
    }

    /// <summary>Puts <paramref name="message"/> into libvips' error buffer, where the failing sink's caller reads it.</summary>
    private static int Fail(string message)
    {
        var error = VipsNative.g_error_new_literal(VipsNative.g_quark_from_string("kiln"), 0, message);
        VipsNative.vips_g_error(&error);
        return -1;
    }

    [UnmanagedCallersOnly]
    private static void Close(nint output, nint data)
    {
        var handle = GCHandle.FromIntPtr(data);
        var stage = (Stage)handle.Target!;
        stage.Source.Dispose();
        VipsNative.g_object_unref(stage.Header);
        handle.Free();
    }

    private sealed class Stage(nint header, IRowSource source, int width, int pixelBytes)
    {
        public nint Header { get; } = header;

        public IRowSource Source { get; } = source;

        public int Width { get; } = width;

        public int PixelBytes { get; } = pixelBytes;

        public int NextRow { get; set; }

        public string? Failed { get; set; }
    }
}
