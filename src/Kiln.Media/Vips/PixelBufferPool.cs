using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// Keeps the large buffers that decoded images are held in (<see cref="VipsImage.CopyMemory"/>) mapped from one image
/// to the next, until image work pauses (<see cref="VipsRuntime.ReleaseFreeMemory"/>).
/// </summary>
/// <remarks>
/// Why: a buffer from <c>malloc</c> this size is a fresh mapping each time (glibc maps it, and unmaps or trims it when
/// freed), so the decode into it takes a page fault and a cleared page for every 4 KiB: for the 18 MB decode of the
/// corpus photo, 4,500 faults, 41 % of all the faults of an upload through the default pipeline (docs/benchmarks.md).
/// A buffer used again is already mapped and never cleared. A few buffers are kept, no more than
/// <paramref name="maxPooledBytes"/> in all; the rest are freed as before.
/// </remarks>
/// <param name="maxPooled">Most buffers kept.</param>
/// <param name="maxPooledBytes">Most bytes kept in all (a buffer larger than this is never kept).</param>
internal sealed unsafe class PixelBufferPool(int maxPooled, long maxPooledBytes)
{
    // Sizes are rounded up to this, so images of nearly the same size share buffers.
    private const nuint Granule = 1024 * 1024;

    private readonly Lock _gate = new();
    private readonly List<(nint Data, nuint Capacity)> _free = [];
    private readonly Dictionary<nint, nuint> _rented = [];
    private long _pooledBytes;

    /// <summary>
    /// The process's pool: four buffers (one per image decoded at once with the default two image slots, and spare), at
    /// most 192 MiB.
    /// </summary>
    public static PixelBufferPool Shared { get; } = new(4, 192L * 1024 * 1024);

    /// <summary>Bytes held by buffers that are not in use.</summary>
    public long PooledBytes
    {
        get
        {
            lock (_gate)
            {
                return _pooledBytes;
            }
        }
    }

    /// <summary>A buffer of at least <paramref name="size"/> bytes, not cleared; null when memory runs out.</summary>
    public byte* Rent(nuint size)
    {
        lock (_gate)
        {
            // The smallest kept buffer that fits and is at most twice the size: a huge buffer is not tied up by a small image.
            var best = -1;
            for (var i = 0; i < _free.Count; i++)
            {
                var capacity = _free[i].Capacity;
                if (capacity >= size && capacity / 2 <= size && (best < 0 || capacity < _free[best].Capacity))
                {
                    best = i;
                }
            }

            if (best >= 0)
            {
                var (data, capacity) = _free[best];
                _free.RemoveAt(best);
                _pooledBytes -= (long)capacity;
                _rented[data] = capacity;
                return (byte*)data;
            }
        }

        var rounded = (size + Granule - 1) / Granule * Granule;
        void* fresh;
        try
        {
            fresh = NativeMemory.Alloc(rounded);
        }
        catch (OutOfMemoryException)
        {
            return null;
        }

        lock (_gate)
        {
            _rented[(nint)fresh] = rounded;
        }

        return (byte*)fresh;
    }

    /// <summary>Takes back a buffer from <see cref="Rent"/>: kept for the next image when there is room, freed otherwise.</summary>
    public void Return(nint data)
    {
        lock (_gate)
        {
            if (!_rented.Remove(data, out var capacity))
            {
                throw new InvalidOperationException("The buffer was not rented from this pool.");
            }

            if (_free.Count < maxPooled && _pooledBytes + (long)capacity <= maxPooledBytes)
            {
                _free.Add((data, capacity));
                _pooledBytes += (long)capacity;
                return;
            }
        }

        NativeMemory.Free((void*)data);
    }

    /// <summary>Frees every buffer not in use; returns how many bytes went.</summary>
    public long Release()
    {
        List<(nint Data, nuint Capacity)> freed;
        long bytes;
        lock (_gate)
        {
            freed = [.. _free];
            _free.Clear();
            (bytes, _pooledBytes) = (_pooledBytes, 0);
        }

        foreach (var (data, _) in freed)
        {
            NativeMemory.Free((void*)data);
        }

        return bytes;
    }
}
