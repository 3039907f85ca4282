using System.Diagnostics;
using System.Globalization;
using Kiln.Media.Images;
using Kiln.Media.Vips;

namespace Kiln.Bench;

/// <summary>
/// The standard sharp resize task through Kiln's product path (<see cref="ImageResizer"/>, the reduction the
/// thumbnails job uses): an image held in memory (by default the 2725x2225 corpus JPEG; --input for the other
/// families) is decoded, resized to 720 wide with Lanczos3, made upright, sRGB and flattened onto white, and encoded
/// as JPEG Q80 into memory. Reports ops/s with 1 and with 2 images in flight, as the median of several timed rounds.
/// bench/run-resize.sh runs it beside the same task in sharp.
/// </summary>
internal sealed class ResizeBenchmark : IBenchmark
{
    public string Name => "resize";

    public string Description => "decode an image from memory, Lanczos3 to 720 wide, encode Q80 (options: --rounds N --seconds S --vips-concurrency N --input PATH --cpu N --libvips-png)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var rounds = Option(args, "--rounds", 5);
        var seconds = Option(args, "--seconds", 3);
        var concurrency = Option(args, "--vips-concurrency", 1);
        var input = OptionText(args, "--input") ?? Path.Combine(RepoRoot(), "..", "shared", "corpus", "2569067123_aca715a2ee_o.jpg");

        // --libvips-png: PNG pixels from libvips' libpng instead of Kiln's managed decoder, for comparison.
        limits = ImageLimits.Default with { ManagedPngDecoder = !args.Contains("--libvips-png") };
        var applied = VipsRuntime.Initialize(new VipsSettings { Concurrency = concurrency });
        var buffer = (ReadOnlyMemory<byte>)await File.ReadAllBytesAsync(input, cancellationToken);

        var check = Once(buffer, cancellationToken);
        if (check.Width != Width)
        {
            await Console.Error.WriteLineAsync($"unexpected output size {check.Width}x{check.Height}");
            return 1;
        }

        var label = Path.GetFileName(input);
        Console.WriteLine($"kiln {applied}; {label}; {rounds} rounds of {seconds}s; output {check.Width}x{check.Height}, {check.Bytes.Length} bytes");
        if (Option(args, "--cpu", 0) is > 0 and var count)
        {
            // CPU time per operation is far less disturbed by other load on a shared machine than ops/s.
            using var process = Process.GetCurrentProcess();
            var cpu = process.TotalProcessorTime;
            var wall = Stopwatch.StartNew();
            for (var i = 0; i < count; i++)
            {
                Once(buffer, cancellationToken);
            }

            process.Refresh();
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"kiln input={label} cpu-ms/op={(process.TotalProcessorTime - cpu).TotalMilliseconds / count:F2} wall-ms/op={wall.Elapsed.TotalMilliseconds / count:F2}"));
            return 0;
        }

        foreach (var inFlight in new[] { 1, 2 })
        {
            await Round(buffer, inFlight, TimeSpan.FromSeconds(1), cancellationToken);
            var rates = new List<double>();
            var cpuPerImage = new List<double>();
            for (var i = 0; i < rounds; i++)
            {
                var (rate, cpu) = await Round(buffer, inFlight, TimeSpan.FromSeconds(seconds), cancellationToken);
                rates.Add(rate);
                cpuPerImage.Add(cpu);
            }

            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"kiln input={label} in-flight={inFlight} median={Median(rates):F1} ops/s rounds=[{string.Join(", ", rates.Select(r => r.ToString("F1", CultureInfo.InvariantCulture)))}] cpu-ms/image={Median(cpuPerImage):F2}"));
        }

        return 0;
    }

    private const int Width = 720;

    private static ImageLimits limits = ImageLimits.Default;

    // 720 wide whatever the height: the box is as tall as any input could need.
    private static ResizedImage Once(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        ImageResizer.ResizeToJpeg(buffer, Width, 100_000, 80, limits, cancellationToken);

    /// <summary>Runs <paramref name="inFlight"/> dedicated threads, each resizing back to back, for the duration.</summary>
    /// <returns>Images per second, and the process CPU time per image.</returns>
    private static async Task<(double Rate, double CpuMsPerImage)> Round(ReadOnlyMemory<byte> buffer, int inFlight, TimeSpan duration, CancellationToken cancellationToken)
    {
        var done = 0;
        using var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var lanes = Enumerable.Range(0, inFlight).Select(_ => Task.Factory.StartNew(
            () =>
            {
                while (clock.Elapsed < duration && !cancellationToken.IsCancellationRequested)
                {
                    Once(buffer, cancellationToken);
                    Interlocked.Increment(ref done);
                }
            },
            cancellationToken,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default)).ToArray();
        await Task.WhenAll(lanes);
        var elapsed = clock.Elapsed.TotalSeconds;
        process.Refresh();
        return (done / elapsed, (process.TotalProcessorTime - cpu).TotalMilliseconds / Math.Max(1, done));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static int Option(string[] args, string name, int fallback) =>
        OptionText(args, name) is { } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;

    private static string? OptionText(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kiln.slnx")))
            {
                return dir.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }
}
