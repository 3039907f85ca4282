using System.Diagnostics;
using Kiln.Media;
using Kiln.Media.FFmpeg;
using Kiln.Media.Video;

namespace Kiln.Bench;

/// <summary>
/// Kiln's overhead over running the same HLS ffmpeg command by hand, on a 60 s 1080p clip: the exact argument
/// list HlsPackager uses, once through a bare Process (output drained, nothing parsed) and once through
/// HlsPackager (probe, progress parsing, staging, playlist checks), alternating, median of each.
/// </summary>
internal sealed class HlsBenchmark : IBenchmark
{
    public string Name => "hls";

    public string Description => "HLS ladder of a 60 s 1080p clip: HlsPackager vs the same ffmpeg command run bare [--rounds N] [--per-rendition]";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var rounds = AvBench.IntOption(args, "--rounds", 3);
        var input = await AvBench.InputAsync(
            "testsrc2-1080p-60s.mp4",
            [
                "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=60",
                "-f", "lavfi", "-i", "sine=frequency=440:duration=60",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2",
            ],
            cancellationToken);

        var runner = new FfmpegRunner();
        var packager = new HlsPackager(runner);
        var settings = new HlsSettings();
        var probe = await new MediaProber(runner).ProbeAsync(input, cancellationToken);
        var renditions = HlsPlan.Renditions(probe.DisplayWidth!.Value, probe.DisplayHeight!.Value, settings);
        Console.WriteLine($"input: {input} ({probe.Duration!.Value.TotalSeconds:0} s, {probe.DisplayWidth}x{probe.DisplayHeight}), " +
            $"renditions: {string.Join(", ", renditions.Select(r => r.Name))}, preset {settings.Preset}, {settings.SegmentSeconds} s segments, {Environment.ProcessorCount} cores");

        var bare = new List<double>();
        var kiln = new List<double>();
        var bareCpu = new List<double>();
        var kilnCpu = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            // Alternating the order cancels out drift (thermal, page cache, other load) between the two.
            for (var turn = 0; turn < 2; turn++)
            {
                var viaKiln = (round + turn) % 2 == 1;
                var output = Path.Combine(AvBench.WorkDirectory, "hls-out-" + Guid.NewGuid().ToString("N"));
                double seconds;
                var (selfBefore, childrenBefore) = AvBench.CpuTimes();
                if (viaKiln)
                {
                    var reports = 0;
                    var watch = Stopwatch.StartNew();
                    await packager.PackageAsync(input, output, settings, new CountingProgress(() => reports++), cancellationToken);
                    seconds = watch.Elapsed.TotalSeconds;
                    kiln.Add(seconds);
                    kilnCpu.Add(CpuSince(selfBefore, childrenBefore));
                    Console.WriteLine($"round {round + 1} kiln {AvBench.F(seconds)} s, cpu {AvBench.F(kilnCpu[^1])} s ({reports} progress reports)");
                }
                else
                {
                    Directory.CreateDirectory(output);
                    var command = FfmpegRunner.BuildFfmpegArguments(HlsPlan.Arguments(input, output, probe, renditions, settings), withProgress: true);
                    seconds = (await AvBench.RunBareAsync("ffmpeg", command, cancellationToken)).TotalSeconds;
                    bare.Add(seconds);
                    bareCpu.Add(CpuSince(selfBefore, childrenBefore));
                    Console.WriteLine($"round {round + 1} bare {AvBench.F(seconds)} s, cpu {AvBench.F(bareCpu[^1])} s");
                }

                Directory.Delete(output, recursive: true);
            }
        }

        var bareMedian = AvBench.Median(bare);
        var kilnMedian = AvBench.Median(kiln);
        Console.WriteLine($"median bare {AvBench.F(bareMedian)} s, kiln {AvBench.F(kilnMedian)} s, " +
            $"overhead {AvBench.F((kilnMedian - bareMedian) / bareMedian * 100, "0.0")} % (target <= 3 %), " +
            $"speed {AvBench.F(probe.Duration.Value.TotalSeconds / kilnMedian)}x real time");
        var bareCpuMedian = AvBench.Median(bareCpu);
        var kilnCpuMedian = AvBench.Median(kilnCpu);
        Console.WriteLine($"median cpu (this process + ffmpeg/ffprobe) bare {AvBench.F(bareCpuMedian)} s, kiln {AvBench.F(kilnCpuMedian)} s, " +
            $"overhead {AvBench.F((kilnCpuMedian - bareCpuMedian) / bareCpuMedian * 100, "0.0")} %");

        if (args.Contains("--per-rendition"))
        {
            await PerRenditionAsync(input, probe, renditions, settings, rounds, cancellationToken);
        }

        return 0;
    }

    private static double CpuSince(TimeSpan selfBefore, TimeSpan childrenBefore)
    {
        var (self, children) = AvBench.CpuTimes();
        return (self - selfBefore + (children - childrenBefore)).TotalSeconds;
    }

    /// <summary>The alternative design: one ffmpeg per rendition, run one after the other, each decoding the source again.</summary>
    private static async Task PerRenditionAsync(
        string input, MediaProbe probe, IReadOnlyList<PlannedRendition> renditions, HlsSettings settings, int rounds, CancellationToken ct)
    {
        var totals = new List<double>();
        var cpu = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            double total = 0;
            var (selfBefore, childrenBefore) = AvBench.CpuTimes();
            foreach (var rendition in renditions)
            {
                var output = Path.Combine(AvBench.WorkDirectory, "hls-one-" + Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(output);
                var command = FfmpegRunner.BuildFfmpegArguments(HlsPlan.Arguments(input, output, probe, [rendition], settings), withProgress: true);
                total += (await AvBench.RunBareAsync("ffmpeg", command, ct)).TotalSeconds;
                Directory.Delete(output, recursive: true);
            }

            totals.Add(total);
            cpu.Add(CpuSince(selfBefore, childrenBefore));
            Console.WriteLine($"round {round + 1} one process per rendition {AvBench.F(total)} s, cpu {AvBench.F(cpu[^1])} s");
        }

        Console.WriteLine($"median one process per rendition (sequential) {AvBench.F(AvBench.Median(totals))} s, cpu {AvBench.F(AvBench.Median(cpu))} s");
    }

    private sealed class CountingProgress(Action onReport) : IProgress<MediaProgress>
    {
        public void Report(MediaProgress value) => onReport();
    }
}
