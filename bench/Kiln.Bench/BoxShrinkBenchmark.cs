using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;

namespace Kiln.Bench;

/// <summary>
/// <see cref="BoxShrink"/> alone on an image held in memory (by default factor 2 of 2725x2225 RGB, the corpus photo's
/// size, as the shared decode meets it), against the two-pass version it replaced (kept here as <see cref="TwoPassReference"/>),
/// alternating call by call. Reports the median wall and thread CPU ms per call (CLOCK_THREAD_CPUTIME_ID, so it
/// holds under load) and checks that both give the same bytes.
/// </summary>
internal sealed unsafe partial class BoxShrinkBenchmark : IBenchmark
{
    private const int ThreadCpuClock = 3; // CLOCK_THREAD_CPUTIME_ID

    public string Name => "box-shrink";

    public string Description => "BoxShrink on a 2725x2225x3 buffer (factor 2 by default), now vs the old two-pass code, median ms per call (options: --count N --factor F --bands B --width W --height H)";

    public Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        int Option(string name, int fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
        }

        var (count, factor, bands, width, height) = (Option("--count", 50), Option("--factor", 2), Option("--bands", 3), Option("--width", 2725), Option("--height", 2225));
        var (outWidth, outHeight) = (width / factor, height / factor);
        var input = new byte[width * height * bands];
        new Random(42).NextBytes(input);
        var outputs = new[] { new byte[outWidth * outHeight * bands], new byte[outWidth * outHeight * bands] };
        var variants = new (string Name, IRowTransform Transform)[]
        {
            ("old (f3560ed)", new TwoPassReference(factor, outWidth, bands)),
            ("new (BoxShrink)", new BoxShrink(factor, outWidth, bands)),
        };
        var wall = new List<double>[] { [], [] };
        var cpu = new List<double>[] { [], [] };
        fixed (byte* source = input, old = outputs[0], current = outputs[1])
        {
            var targets = new[] { (nint)old, (nint)current };
            for (var n = -3; n < count && !cancellationToken.IsCancellationRequested; n++)
            {
                for (var v = 0; v < variants.Length; v++)
                {
                    var cpuBefore = ThreadCpuMs();
                    var watch = Stopwatch.StartNew();
                    variants[v].Transform.Transform(source, width * bands, (byte*)targets[v], outWidth * bands, outHeight);
                    if (n >= 0)
                    {
                        wall[v].Add(watch.Elapsed.TotalMilliseconds);
                        cpu[v].Add(ThreadCpuMs() - cpuBefore);
                    }
                }
            }
        }

        var same = outputs[0].AsSpan().SequenceEqual(outputs[1]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"box-shrink factor {factor}, {width}x{height}x{bands}, {count} calls each, alternating, AVX2 {System.Runtime.Intrinsics.X86.Avx2.IsSupported}, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}:"));
        for (var v = 0; v < variants.Length; v++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {variants[v].Name,-18} median wall {HubBench.Median(wall[v]),6:F2} ms/call, median cpu {HubBench.Median(cpu[v]),6:F2} ms/call"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  old/new CPU: {HubBench.Median(cpu[0]) / HubBench.Median(cpu[1]):F2}x; same bytes: {same}"));
        return Task.FromResult(same ? 0 : 1);
    }

    private static double ThreadCpuMs()
    {
        Timespec t;
        return ClockGetTime(ThreadCpuClock, &t) == 0 ? (t.Seconds * 1e3) + (t.Nanoseconds / 1e6) : double.NaN;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, Timespec* time);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>BoxShrink as it was before the fused factor-2 path (commit f3560ed), for comparison only.</summary>
    private sealed class TwoPassReference(int factor, int outputWidth, int bands) : IRowTransform
    {
        private readonly int _rowBytes = outputWidth * factor * bands;

        public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows)
        {
            var sums = ArrayPool<ushort>.Shared.Rent(_rowBytes);
            try
            {
                fixed (ushort* acc = sums)
                {
                    for (var y = 0; y < rows; y++)
                    {
                        SumRows(input + (y * factor * inputStride), inputStride, acc);
                        SumColumns(acc, output + (y * outputStride));
                    }
                }
            }
            finally
            {
                ArrayPool<ushort>.Shared.Return(sums);
            }
        }

        private void SumRows(byte* first, nint stride, ushort* acc)
        {
            var vectorEnd = _rowBytes - Vector256<byte>.Count;
            for (var r = 0; r < factor; r++)
            {
                var row = first + (r * stride);
                var i = 0;
                for (; i <= vectorEnd; i += Vector256<byte>.Count)
                {
                    var (low, high) = Vector256.Widen(Vector256.Load(row + i));
                    if (r > 0)
                    {
                        low += Vector256.Load(acc + i);
                        high += Vector256.Load(acc + i + Vector256<ushort>.Count);
                    }

                    low.Store(acc + i);
                    high.Store(acc + i + Vector256<ushort>.Count);
                }

                for (; i < _rowBytes; i++)
                {
                    acc[i] = (ushort)((r > 0 ? acc[i] : 0) + row[i]);
                }
            }
        }

        private void SumColumns(ushort* acc, byte* output)
        {
            if (factor == 2 && bands == 3)
            {
                for (var x = 0; x < outputWidth; x++, acc += 6, output += 3)
                {
                    output[0] = (byte)((acc[0] + acc[3] + 2) >> 2);
                    output[1] = (byte)((acc[1] + acc[4] + 2) >> 2);
                    output[2] = (byte)((acc[2] + acc[5] + 2) >> 2);
                }

                return;
            }

            var area = factor * factor;
            var half = area / 2;
            var pixelBytes = factor * bands;
            for (var x = 0; x < outputWidth; x++)
            {
                var block = acc + (x * pixelBytes);
                for (var b = 0; b < bands; b++)
                {
                    var sum = half;
                    for (var dx = 0; dx < pixelBytes; dx += bands)
                    {
                        sum += block[dx + b];
                    }

                    output[(x * bands) + b] = (byte)(sum / area);
                }
            }
        }
    }
}
