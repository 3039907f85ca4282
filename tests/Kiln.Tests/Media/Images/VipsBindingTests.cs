using System.Runtime.InteropServices;
using Kiln.Media.Vips;

namespace Kiln.Tests.Media.Images;

public sealed class VipsBindingTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    [Fact]
    public void Initialize_is_idempotent_and_reports_what_was_applied()
    {
        var first = VipsRuntime.Initialize(new VipsSettings());
        var second = VipsRuntime.Initialize(new VipsSettings { Concurrency = 7 });

        Assert.Same(first, second);
        Assert.StartsWith("8.", first.Version, StringComparison.Ordinal);
        Assert.True(first.UntrustedLoadersBlocked);
        Assert.Contains("libvips 8.", first.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Freed_memory_inside_an_arena_goes_back_to_the_system()
    {
        // 4 MiB freed between live blocks, as a libvips worker leaves it: free() cannot shrink the heap past the live
        // block above, only malloc_trim hands the free pages back.
        var trimmed = false;
        var worker = new Thread(() =>
        {
            unsafe
            {
                var blocks = Enumerable.Range(0, 64).Select(_ => (nint)NativeMemory.Alloc(64 * 1024)).ToList();
                var fence = NativeMemory.Alloc(1024);
                blocks.ForEach(b => NativeMemory.Free((void*)b));
                trimmed = VipsRuntime.ReleaseFreeMemory();
                NativeMemory.Free(fence);
            }
        });
        worker.Start();
        worker.Join();

        Assert.True(trimmed);
    }

    [Fact]
    public void Malloc_keeps_freed_image_buffers_in_the_heap_for_the_next_image()
    {
        // Every host starts libvips with the default: glibc accepted all three parameters.
        var applied = VipsRuntime.Initialize(new VipsSettings());
        Assert.Equal(128L << 20, applied.MallocRetainBytes);
        Assert.Contains("malloc retains=134217728 B", applied.ToString(), StringComparison.Ordinal);

        // A decode buffer's size (the corpus photo: 2725x2225x3, 18 MiB) comes from the heap, not from a mapping of its
        // own that is faulted in, zeroed and unmapped again for every image.
        var mappedWhileLive = 0L;
        var mappedBefore = 0L;
        var worker = new Thread(() =>
        {
            unsafe
            {
                mappedBefore = (long)mallinfo2().hblkhd;
                var buffer = NativeMemory.Alloc(18 << 20);
                mappedWhileLive = (long)mallinfo2().hblkhd;
                NativeMemory.Free(buffer);
            }
        });
        worker.Start();
        worker.Join();

        Assert.True(mappedWhileLive - mappedBefore < 18 << 20, $"mmapped bytes grew by {mappedWhileLive - mappedBefore}");
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost;
    }

    [DllImport("libc")]
    private static extern MallInfo2 mallinfo2();

    [Fact]
    public void Untrusted_loaders_are_blocked_even_when_called_directly()
    {
        var svg = scratch.File("direct.svg");
        File.WriteAllText(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"8\" height=\"8\"><rect width=\"8\" height=\"8\"/></svg>");

        var e = Assert.Throws<VipsException>(() => VipsOperation.Run("svgload", ("filename", svg)));

        Assert.Contains("blocked", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Libvips_warnings_reach_the_log_event_instead_of_stderr()
    {
        VipsRuntime.Initialize(new VipsSettings());
        var bytes = File.ReadAllBytes(Kiln.Tests.Infrastructure.TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"));
        var truncated = scratch.File("truncated-for-warning.jpg");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 3)]);
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(VipsLogLevel, string)>();
        void Listener(VipsLogLevel level, string message) => seen.Enqueue((level, message));

        VipsRuntime.Logged += Listener;
        try
        {
            // fail_on=none decodes what is there and lets libjpeg warn instead of failing.
            using var image = VipsOperation.Run("jpegload", ("filename", truncated), ("fail_on", "none"));
            using var decoded = image.CopyMemory(TestContext.Current.CancellationToken);
        }
        finally
        {
            VipsRuntime.Logged -= Listener;
        }

        Assert.Contains(seen, e => e.Item1 == VipsLogLevel.Warning && e.Item2.Contains("Premature end of JPEG file", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unknown_operation_raises_libvips_own_message()
    {
        var e = Assert.Throws<VipsException>(() => VipsOperation.Create("no_such_operation"));

        Assert.Contains("no_such_operation", e.Message, StringComparison.Ordinal);
        Assert.Contains("not found", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_argument_names_the_operation_and_the_argument()
    {
        using var op = VipsOperation.Create("black");

        var e = Assert.Throws<VipsException>(() => op.Set("colour", 3));

        Assert.Contains("black.colour", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_build_raises_and_clears_the_error_buffer()
    {
        var e = Assert.Throws<VipsException>(() => VipsOperation.Run("black", ("width", 10)));
        Assert.Contains("black", e.Message, StringComparison.Ordinal);

        // The next failure carries only its own text.
        var next = Assert.Throws<VipsException>(() => VipsOperation.Run("xyz", ("width", 10)));
        Assert.DoesNotContain("black", next.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Images_round_trip_through_memory_with_enums_arrays_and_metadata()
    {
        using var black = VipsOperation.Run("black", ("width", 4), ("height", 3), ("bands", 3));
        using var coloured = black.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { 10.0, 20.0, 30.0 }), ("uchar", true));
        using var tagged = coloured.CopyWithInt("orientation", 6);

        var bytes = tagged.ToBytes(CancellationToken.None);

        Assert.Equal((4, 3, 3), (tagged.Width, tagged.Height, tagged.Bands));
        Assert.Equal(6, tagged.Orientation);
        Assert.Equal(1, coloured.Orientation);
        Assert.Equal(36, bytes.Length);
        Assert.Equal(new byte[] { 10, 20, 30 }, bytes[..3]);
        using var back = VipsImage.FromBytes(bytes, 4, 3, 3);
        Assert.Equal(20.0, back.Statistic("avg", "out", CancellationToken.None), 3);
    }

    [Fact]
    public void A_memory_copy_keeps_pixels_and_metadata_in_a_buffer_libvips_does_not_clear_first()
    {
        using var black = VipsOperation.Run("black", ("width", 3000), ("height", 2000), ("bands", 3));
        using var coloured = black.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { 10.0, 20.0, 30.0 }), ("uchar", true));
        using var tagged = coloured.CopyWithInt("orientation", 6);
        var tracked = VipsNative.vips_tracked_get_mem();

        using var copy = tagged.CopyMemory(CancellationToken.None);

        // vips_image_copy_memory took its 18 MB from vips_tracked_malloc, which clears what the copy then overwrites.
        var grown = (long)VipsNative.vips_tracked_get_mem() - (long)tracked;
        Assert.True(grown < 9_000_000, $"tracked memory grew by {grown} bytes");
        Assert.Equal((3000, 2000, 3, 6), (copy.Width, copy.Height, copy.Bands, copy.Orientation));
        var bytes = copy.ToBytes(CancellationToken.None);
        Assert.Equal(18_000_000, bytes.Length);
        Assert.Equal(new byte[] { 10, 20, 30 }, bytes[..3]);
        Assert.Equal(new byte[] { 10, 20, 30 }, bytes[^3..]);
    }

    [Fact]
    public void Saving_to_a_buffer_returns_the_encoded_bytes()
    {
        using var black = VipsOperation.Run("black", ("width", 32), ("height", 16));

        var jpeg = black.SaveToBuffer("jpegsave_buffer", CancellationToken.None, ("Q", 80));

        Assert.Equal(new byte[] { 0xFF, 0xD8, 0xFF }, jpeg[..3]);
    }

    [Fact]
    public void Cancelling_stops_a_long_evaluation_promptly()
    {
        // A large blurred canvas takes many seconds to encode; the kill flag must stop it within the next tiles. No
        // time limit is asserted (a loaded machine is slow either way): an encode the flag did not stop would finish
        // and succeed, and only a stopped one fails, which the binding turns into the cancellation.
        using var canvas = VipsOperation.Run("gaussnoise", ("width", 12000), ("height", 12000));
        using var blurred = canvas.Call("gaussblur", ("sigma", 20.0));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(TimeSpan.FromMilliseconds(300));

        Assert.Throws<OperationCanceledException>(() => blurred.Save("jpegsave", scratch.File("never.jpg"), cts.Token));
    }
}
