using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Kiln.Media.Images;

namespace Kiln.Bench;

/// <summary>
/// Where the default image pipeline's CPU goes, step by step, without the server (<c>derivatives --steps</c>): the
/// probe's work (SHA-256 of the file, the header), the decodes alone (full size, and at 1/2 as the thumbnails decode a
/// JPEG), the optimize job's transform and the thumbnails job's transform. One image at a time, the steps alternating,
/// process CPU per image (libvips' worker threads included), the first pass of each step uncounted (warm-up).
/// </summary>
internal static class DerivativeSteps
{
    public static int Run(string input, int count, CancellationToken cancellationToken, string? only = null)
    {
        var scratch = Directory.CreateTempSubdirectory("kiln-bench-steps-").FullName;
        try
        {
            (string Name, Action<string> Run)[] steps =
            [
                ("probe: SHA-256 of the file", dir =>
                {
                    using var file = File.OpenRead(input);
                    SHA256.HashData(file);
                }),
                ("probe: header (ImageProbe.Read)", _ => ImageProbe.Read(input, cancellationToken)),
                ("decode full size only", _ => Decode(input, shrink: 1, cancellationToken)),
                ("decode at 1/2 only", _ => Decode(input, shrink: 2, cancellationToken)),
                ("image.optimize transform", dir => ImageOptimizer.Optimize(input, Path.Combine(dir, "optimized"), new OptimizeOptions(), ImageLimits.Default, cancellationToken)),
                ("image.thumbnails transform", dir => ImageThumbnailer.Make(input, dir, ThumbnailSpec.Defaults, ImageLimits.Default, cancellationToken)),
                .. ThumbnailSpec.Defaults.Select(spec => ($"thumbnail {spec.Name} alone", (Action<string>)(dir => ImageThumbnailer.Make(input, dir, [spec], ImageLimits.Default, cancellationToken)))),
            ];
            // --step TEXT: only the steps whose name contains it (to profile one of them).
            steps = only is null ? steps : steps.Where(s => s.Name.Contains(only, StringComparison.Ordinal)).ToArray();
            var (cpu, _) = Measure(steps, count, scratch);

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"steps of {Path.GetFileName(input)}, {count} images, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}:"));
            for (var s = 0; s < steps.Length; s++)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {steps[s].Name,-34} cpu {cpu[s] / count,7:F1} ms/image"));
            }

            return 0;
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// Runs each action <paramref name="count"/> + 1 times, the actions alternating, each in a fresh directory under
    /// <paramref name="scratch"/>; returns each action's total process CPU and wall ms, the first pass (warm-up: JIT,
    /// libvips caches) uncounted.
    /// </summary>
    public static (double[] Cpu, double[] Wall) Measure((string Name, Action<string> Run)[] runs, int count, string scratch)
    {
        var cpu = new double[runs.Length];
        var wall = new double[runs.Length];
        using var process = Process.GetCurrentProcess();
        for (var n = -1; n < count; n++)
        {
            for (var r = 0; r < runs.Length; r++)
            {
                var dir = Directory.CreateDirectory(Path.Combine(scratch, $"{r}-{n}")).FullName;
                process.Refresh();
                var before = process.TotalProcessorTime;
                var watch = Stopwatch.StartNew();
                runs[r].Run(dir);
                process.Refresh();
                if (n >= 0)
                {
                    cpu[r] += (process.TotalProcessorTime - before).TotalMilliseconds;
                    wall[r] += watch.Elapsed.TotalMilliseconds;
                }

                Directory.Delete(dir, recursive: true);
            }
        }

        return (cpu, wall);
    }

    /// <summary>Every pixel decoded and summed (libvips <c>avg</c>), nothing encoded.</summary>
    private static void Decode(string input, int shrink, CancellationToken cancellationToken)
    {
        var (source, _) = ImageSource.Prepare(input, ImageLimits.Default, cancellationToken);
        using var image = source.Open(sequential: true, allPages: false, ImageLimits.Default, cancellationToken, shrink);
        _ = image.Statistic("avg", "out", cancellationToken);
    }
}
