using System.Buffers;
using Kiln.Hosting;
using Kiln.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Tests.Hosting;

/// <summary>Kestrel receives into 64 KiB blocks (docs/benchmarks.md, "Large uploads"), and the pool stays bounded.</summary>
public sealed class KestrelBlockPoolTests
{
    [Fact]
    public async Task The_server_receives_a_request_body_in_blocks_larger_than_Kestrels_default_4_KiB()
    {
        // Reports the largest contiguous piece of the raw body the transport handed over: one pool block at most.
        await using var server = await KilnServer.StartAsync(configure: b => b.Services.AddSingleton<IStartupFilter>(new LargestSegmentFilter()));
        using var body = new ByteArrayContent(new byte[4 * 1024 * 1024]);
        using var response = await server.Admin.PostAsync("/test/largest-segment", body);
        var largest = int.Parse(await response.Content.ReadAsStringAsync(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(largest, 4097, KestrelBlockPool.BlockSize);
    }

    [Fact]
    public void A_returned_block_is_reused_and_blocks_are_64_KiB()
    {
        using var pool = new KestrelBlockPool();
        var first = pool.Rent(2048);
        Assert.Equal(KestrelBlockPool.BlockSize, first.Memory.Length);
        var array = first.Memory;
        first.Dispose();
        using var second = pool.Rent();
        Assert.True(second.Memory.Span == array.Span, "the freed block is handed out again");
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Rent(KestrelBlockPool.BlockSize + 1));
    }

    [Fact]
    public void At_most_MaxRetainedBlocks_free_blocks_are_kept()
    {
        using var pool = new KestrelBlockPool();
        var rented = Enumerable.Range(0, KestrelBlockPool.MaxRetainedBlocks + 10).Select(_ => pool.Rent()).ToList();
        var memories = rented.Select(r => r.Memory).ToList();
        rented.ForEach(r => r.Dispose());
        // Renting everything again reuses MaxRetainedBlocks of the old blocks; the other ten are new.
        var again = Enumerable.Range(0, KestrelBlockPool.MaxRetainedBlocks + 10).Select(_ => pool.Rent()).ToList();
        var reused = again.Count(a => memories.Any(m => m.Span == a.Memory.Span));
        Assert.Equal(KestrelBlockPool.MaxRetainedBlocks, reused);
        again.ForEach(r => r.Dispose());
    }

    private sealed class LargestSegmentFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Map("/test/largest-segment", a => a.Run(async ctx =>
            {
                var largest = 0;
                while (true)
                {
                    var read = await ctx.Request.BodyReader.ReadAsync();
                    foreach (var segment in read.Buffer)
                    {
                        largest = Math.Max(largest, segment.Length);
                    }

                    ctx.Request.BodyReader.AdvanceTo(read.Buffer.End);
                    if (read.IsCompleted)
                    {
                        break;
                    }
                }

                await ctx.Response.WriteAsync(largest.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }));
            next(app);
        };
    }
}
