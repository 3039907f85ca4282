using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Kiln.Hosting;

/// <summary>
/// Kestrel's memory pool with 64 KiB blocks instead of its default 4 KiB. The socket transport receives into one
/// block at a time, so with 4 KiB blocks a 1 GiB upload took 262,144 <c>recv</c> calls and as many trips through
/// the request pipe; with 64 KiB it takes a sixteenth of that (docs/benchmarks.md, "Large uploads"). Idle
/// connections hold no block (Kestrel waits for data before it asks for one), and released blocks beyond
/// <see cref="MaxRetainedBlocks"/> go back to the GC, so the pool cannot grow past what busy connections use.
/// </summary>
internal sealed class KestrelBlockPoolFactory : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new KestrelBlockPool();
}

internal sealed class KestrelBlockPool : MemoryPool<byte>
{
    public const int BlockSize = 64 * 1024;

    /// <summary>At most 16 MiB of free blocks kept for reuse.</summary>
    public const int MaxRetainedBlocks = 256;

    private readonly ConcurrentQueue<byte[]> _free = new();
    private int _freeCount;

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
        }
        else
        {
            // Pinned (the pinned object heap): sockets pin their buffers for every operation anyway, and pinned
            // blocks in the ordinary heap would fragment it.
            block = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);
        }

        return new Block(this, block);
    }

    private void Return(byte[] block)
    {
        if (Interlocked.Increment(ref _freeCount) <= MaxRetainedBlocks)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _freeCount);
        }
    }

    protected override void Dispose(bool disposing)
    {
        _free.Clear();
    }

    private sealed class Block(KestrelBlockPool pool, byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } returned)
            {
                pool.Return(returned);
            }
        }
    }
}
