using Kiln.Media.Vips;

namespace Kiln.Tests.Media.Images;

public sealed unsafe class PixelBufferPoolTests
{
    private const uint MiB = 1024 * 1024;

    [Fact]
    public void A_returned_buffer_serves_the_next_image_of_a_similar_size()
    {
        var pool = new PixelBufferPool(4, 192L * MiB);
        var first = pool.Rent(18_000_000);
        pool.Return((nint)first);
        Assert.Equal(18L * MiB, pool.PooledBytes);   // rounded up to whole MiB

        var again = pool.Rent(17_500_000);
        Assert.Equal((nint)first, (nint)again);
        Assert.Equal(0, pool.PooledBytes);

        // Too small for a larger image, and not tied up by one less than half its size: both get buffers of their own.
        pool.Return((nint)again);
        var larger = pool.Rent(19_000_000 + MiB);
        var small = pool.Rent(4_000_000);
        Assert.Equal(18L * MiB, pool.PooledBytes);
        Assert.NotEqual((nint)again, (nint)larger);
        Assert.NotEqual((nint)again, (nint)small);
        pool.Return((nint)larger);
        pool.Return((nint)small);
        Assert.Equal((18L + 20 + 4) * MiB, pool.PooledBytes);

        Assert.Equal((18L + 20 + 4) * MiB, pool.Release());
        Assert.Equal(0, pool.PooledBytes);
    }

    [Fact]
    public void The_pool_keeps_no_more_buffers_or_bytes_than_its_limits()
    {
        var pool = new PixelBufferPool(2, 30L * MiB);
        var buffers = new[] { pool.Rent(10 * MiB), pool.Rent(10 * MiB), pool.Rent(10 * MiB), pool.Rent(40 * MiB) };
        foreach (var buffer in buffers)
        {
            pool.Return((nint)buffer);
        }

        // Two of the three 10 MiB buffers are kept; the third is past the count, the 40 MiB one past the bytes.
        Assert.Equal(20L * MiB, pool.PooledBytes);
        Assert.Throws<InvalidOperationException>(() => pool.Return((nint)buffers[0]));
        pool.Release();
    }

    [Fact]
    public void A_copy_into_a_reused_buffer_holds_only_its_own_pixels()
    {
        var pool = new PixelBufferPool(4, 192L * MiB);
        using (var white = Solid(255, 255, 255))
        using (var copy = white.CopyMemory(CancellationToken.None, pool))
        {
            Assert.Equal(0, pool.PooledBytes);   // in use by the copy
        }

        Assert.Equal(18L * MiB, pool.PooledBytes);   // back when the copy closed

        using var grey = Solid(10, 20, 30);
        using var second = grey.CopyMemory(CancellationToken.None, pool);

        Assert.Equal(0, pool.PooledBytes);   // the same buffer, still holding white pixels before the write
        var bytes = second.ToBytes(CancellationToken.None);
        Assert.Equal(18_000_000, bytes.Length);
        Assert.Equal(10.0 * 20.0 * 30.0, bytes.Chunk(3).Select(p => (double)p[0] * p[1] * p[2]).Distinct().Single());
    }

    private static VipsImage Solid(double r, double g, double b)
    {
        using var black = VipsOperation.Run("black", ("width", 3000), ("height", 2000), ("bands", 3));
        return black.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { r, g, b }), ("uchar", true));
    }
}
