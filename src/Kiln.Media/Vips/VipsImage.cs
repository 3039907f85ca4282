using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// A libvips image: usually a lazy pipeline that computes pixels only when a sink (a saver, a statistic)
/// pulls them. Header fields are cheap to read; the methods build new pipeline stages.
/// </summary>
internal sealed unsafe class VipsImage : IDisposable
{
    internal VipsImage(VipsImageHandle handle)
    {
        Handle = handle;
    }

    internal VipsImageHandle Handle { get; }

    private nint Ptr => Handle.DangerousGetHandle();

    public int Width => VipsNative.vips_image_get_width(Ptr);

    public int Height => VipsNative.vips_image_get_height(Ptr);

    public int Bands => VipsNative.vips_image_get_bands(Ptr);

    /// <summary>The band format as libvips' <c>VipsBandFormat</c> number (0 = uchar).</summary>
    public int Format => VipsNative.vips_image_get_format(Ptr);

    public string Interpretation =>
        VipsOperation.PtrToString(VipsNative.vips_enum_nick(
            VipsNative.vips_interpretation_get_type(), VipsNative.vips_image_get_interpretation(Ptr))) ?? "unknown";

    public bool HasAlpha => VipsNative.vips_image_hasalpha(Ptr) != 0;

    /// <summary>Pages in the file (from <c>n-pages</c>), not only the ones loaded; 1 when the format has no pages.</summary>
    public int PageCount => VipsNative.vips_image_get_n_pages(Ptr);

    public int PageHeight => VipsNative.vips_image_get_page_height(Ptr);

    /// <summary>EXIF orientation 1–8; 1 when the image has none.</summary>
    public int Orientation => VipsNative.vips_image_get_orientation(Ptr);

    public bool HasField(string name) => VipsNative.vips_image_get_typeof(Ptr, name) != 0;

    public string? GetString(string name)
    {
        if (!HasField(name))
        {
            return null;
        }

        if (VipsNative.vips_image_get_string(Ptr, name, out var value) != 0)
        {
            // The field exists but is not a string: not an error worth keeping in the shared buffer.
            VipsNative.vips_error_clear();
            return null;
        }

        return VipsOperation.PtrToString(value);
    }

    /// <summary>
    /// Returns a copy that shares the pixels but has its own metadata, which may then be changed: libvips images
    /// can be shared (through its cache or other pipelines), so metadata is only ever set on a fresh copy.
    /// </summary>
    public VipsImage CopyWithInt(string name, int value)
    {
        var copy = VipsOperation.Run("copy", ("in", this));
        VipsNative.vips_image_set_int(copy.Ptr, name, value);
        return copy;
    }

    public VipsImage Call(string operation, params ReadOnlySpan<(string Name, object Value)> arguments)
    {
        using var op = VipsOperation.Create(operation);
        op.Set("in", this);
        foreach (var (argName, value) in arguments)
        {
            op.Set(argName, value);
        }

        op.Build();
        return op.GetImage("out");
    }

    /// <summary>Computes all pixels into memory, so later stages can read them in any order or many times.</summary>
    /// <remarks>
    /// Not <c>vips_image_copy_memory</c>: in libvips 8.14 its buffer comes from <c>vips_tracked_malloc</c>, which
    /// clears it, and the decode then writes every byte again: for the 18 MB full decode of a JPEG upload that
    /// <c>memset</c> caused 45 % of the pipeline's page faults (docs/benchmarks.md, "The shared decode's buffer").
    /// The same write into a buffer that is not cleared (as <c>vips_image_write_to_memory</c> does), kept as the
    /// image's own: <c>vips_image_write</c> copies the header and metadata (orientation, ICC profile) as
    /// <c>copy_memory</c> does. The buffer comes from <see cref="PixelBufferPool"/> and goes back to it when the image
    /// closes, so the next decode of a similar size writes into pages that are already mapped.
    /// </remarks>
    /// <param name="cancellationToken">Stops the computation at the next strip.</param>
    /// <param name="pool">Where the buffer comes from and goes back to (tests pass their own); the process's by default.</param>
    public VipsImage CopyMemory(CancellationToken cancellationToken, PixelBufferPool? pool = null)
    {
        pool ??= PixelBufferPool.Shared;
        using var kill = KillOnCancel(cancellationToken);
        var size = checked((nuint)Width * (nuint)Height * (nuint)Bands * VipsNative.vips_format_sizeof(Format));
        var data = pool.Rent(size);
        if (data == null)
        {
            throw new InsufficientMemoryException($"Cannot allocate {size} bytes for a {Width}x{Height} image.");
        }

        var output = VipsNative.vips_image_new_from_memory(data, size, Width, Height, Bands, Format);
        if (output == nint.Zero)
        {
            pool.Return((nint)data);
            throw VipsException.FromBuffer("new_from_memory");
        }

        var owner = GCHandle.ToIntPtr(GCHandle.Alloc(new PooledBuffer(pool, (nint)data)));
        VipsNative.g_signal_connect_data(output, "postclose", &ReturnData, owner, nint.Zero, 0);
        var copy = new VipsImage(new VipsImageHandle(output));
        try
        {
            var failed = VipsNative.vips_image_write(Ptr, output) != 0;
            cancellationToken.ThrowIfCancellationRequested();
            return failed ? throw VipsException.FromBuffer("image_write") : copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    [UnmanagedCallersOnly]
    private static void ReturnData(nint image, nint owner)
    {
        var handle = GCHandle.FromIntPtr(owner);
        var (pool, data) = (PooledBuffer)handle.Target!;
        handle.Free();
        pool.Return(data);
    }

    private sealed record PooledBuffer(PixelBufferPool Pool, nint Data);

    /// <summary>Runs a saver (a sink) on this image; pixels are computed here.</summary>
    public void Save(string saver, string path, CancellationToken cancellationToken, params ReadOnlySpan<(string Name, object Value)> options)
    {
        using var op = VipsOperation.Create(saver);
        op.Set("in", this).Set("filename", path);
        foreach (var (name, value) in options)
        {
            op.Set(name, value);
        }

        using (KillOnCancel(cancellationToken))
        {
            BuildSink(op, cancellationToken);
        }
    }

    /// <summary>Runs a buffer saver (<c>jpegsave_buffer</c>, …) and returns the encoded bytes.</summary>
    public byte[] SaveToBuffer(string saver, CancellationToken cancellationToken, params ReadOnlySpan<(string Name, object Value)> options)
    {
        using var op = VipsOperation.Create(saver);
        op.Set("in", this);
        foreach (var (name, value) in options)
        {
            op.Set(name, value);
        }

        using (KillOnCancel(cancellationToken))
        {
            BuildSink(op, cancellationToken);
        }

        return op.GetBlob("buffer");
    }

    /// <summary>Runs an operation that computes a statistic (a sink) and returns its numeric output.</summary>
    public double Statistic(string operation, string output, CancellationToken cancellationToken, params ReadOnlySpan<(string Name, object Value)> arguments)
    {
        using var op = VipsOperation.Create(operation);
        op.Set("in", this);
        foreach (var (name, value) in arguments)
        {
            op.Set(name, value);
        }

        using (KillOnCancel(cancellationToken))
        {
            BuildSink(op, cancellationToken);
        }

        return op.GetNumber(output);
    }

    /// <summary>Copies an 8-bit image's pixels out, band-interleaved, row by row.</summary>
    public byte[] ToBytes(CancellationToken cancellationToken)
    {
        using var kill = KillOnCancel(cancellationToken);
        var data = VipsNative.vips_image_write_to_memory(Ptr, out var size);
        cancellationToken.ThrowIfCancellationRequested();
        if (data == null)
        {
            throw VipsException.FromBuffer("write_to_memory");
        }

        try
        {
            return new ReadOnlySpan<byte>(data, checked((int)size)).ToArray();
        }
        finally
        {
            VipsNative.g_free((nint)data);
        }
    }

    public static VipsImage FromBytes(ReadOnlySpan<byte> pixels, int width, int height, int bands)
    {
        VipsRuntime.EnsureInitialized();
        fixed (byte* p = pixels)
        {
            var image = VipsNative.vips_image_new_from_memory_copy(p, (nuint)pixels.Length, width, height, bands, 0);
            return image == nint.Zero ? throw VipsException.FromBuffer("new_from_memory") : new VipsImage(new VipsImageHandle(image));
        }
    }

    public void Dispose() => Handle.Dispose();

    private static void BuildSink(VipsOperation op, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            op.Build();
        }
        catch (VipsException) when (cancellationToken.IsCancellationRequested)
        {
            // libvips reports a killed evaluation as an error; the caller asked for the stop, so say so.
            throw new OperationCanceledException(cancellationToken);
        }
    }

    /// <summary>
    /// Sets libvips' kill flag on this image when the token fires, so the worker threads evaluating it stop at
    /// the next tile instead of finishing a long computation nobody wants.
    /// </summary>
    private CancellationTokenRegistration KillOnCancel(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return default;
        }

        var handle = Handle;
        return cancellationToken.Register(() =>
        {
            var added = false;
            handle.DangerousAddRef(ref added);
            try
            {
                VipsNative.vips_image_set_kill(handle.DangerousGetHandle(), 1);
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        });
    }
}
