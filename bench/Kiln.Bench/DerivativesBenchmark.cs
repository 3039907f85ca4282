using System.Diagnostics;
using System.Globalization;
using Kiln.Media.Images;
using Kiln.Media.Vips;

namespace Kiln.Bench;

/// <summary>
/// The per-format rule of one decode per upload (docs/decisions.md), measured without the server: the default
/// pipeline's two derivatives of one file made separately (<see cref="ImageOptimizer"/> then
/// <see cref="ImageThumbnailer"/>, what the two jobs do alone) and from one shared decode (<see cref="SharedDecode"/>,
/// forced for every format), alternating, one image at a time. Reports CPU ms per image for each (process CPU time,
/// so it holds under load) and the wall time.
/// </summary>
internal sealed class DerivativesBenchmark : IBenchmark
{
    public string Name => "derivatives";

    public string Description => "optimize + 3 thumbnails of one image, separate decodes vs one shared decode, CPU ms per image (options: --input PATH --count N --mode separate|shared; --steps [--step TEXT]: CPU per step of the default pipeline)";

    public Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var i = Array.IndexOf(args, "--input");
        var input = i >= 0 && i + 1 < args.Length ? args[i + 1] : Path.Combine(ResizeBenchmark.RepoRoot(), "..", "shared", "corpus", "2569067123_aca715a2ee_o.jpg");
        var c = Array.IndexOf(args, "--count");
        var count = c >= 0 && c + 1 < args.Length ? int.Parse(args[c + 1], CultureInfo.InvariantCulture) : 10;
        VipsRuntime.Initialize(new VipsSettings { Concurrency = 1 });
        if (args.Contains("--steps"))
        {
            var step = Array.IndexOf(args, "--step");
            return Task.FromResult(DerivativeSteps.Run(input, count, cancellationToken, step >= 0 && step + 1 < args.Length ? args[step + 1] : null));
        }

        var scratch = Directory.CreateTempSubdirectory("kiln-bench-derivatives-").FullName;
        try
        {
            var modes = new (string Name, Action<string> Run)[]
            {
                ("separate", dir =>
                {
                    ImageOptimizer.Optimize(input, Path.Combine(dir, "optimized"), new OptimizeOptions(), ImageLimits.Default, cancellationToken);
                    ImageThumbnailer.Make(input, dir, ThumbnailSpec.Defaults, ImageLimits.Default, cancellationToken);
                }),
                ("shared", dir => _ = SharedDecode.Make(
                    input,
                    new OptimizeRequest(Path.Combine(dir, "optimized"), new OptimizeOptions()),
                    new ThumbnailsRequest(dir, ThumbnailSpec.Defaults),
                    ImageLimits.Default,
                    formatRule: false,
                    cancellationToken) ?? throw new InvalidOperationException("the image does not share a decode")),
            };
            // --mode NAME: only that mode (to profile one of them).
            var only = Array.IndexOf(args, "--mode");
            if (only >= 0 && only + 1 < args.Length)
            {
                modes = modes.Where(m => m.Name == args[only + 1]).ToArray();
            }

            var (cpu, wall) = DerivativeSteps.Measure(modes, count, scratch);

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"derivatives {Path.GetFileName(input)}, {count} images each, alternating, load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}:"));
            for (var m = 0; m < modes.Length; m++)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {modes[m].Name,-8} cpu {cpu[m] / count:F1} ms/image, wall {wall[m] / count:F1} ms/image"));
            }

            if (modes.Length == 2)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  shared/separate CPU: {cpu[1] / cpu[0]:F2}"));
            }

            return Task.FromResult(0);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }
}
