using System.Diagnostics;
using Kiln.Media.Audio;
using Kiln.Media.FFmpeg;

namespace Kiln.Bench;

/// <summary>
/// Waveform peaks of a 1-minute and a 10-minute MP3: median wall time, and memory (bytes allocated per run,
/// managed heap after the run, this process's resident set now and at its peak) to show that memory does not
/// grow with the length of the audio.
/// </summary>
internal sealed class WaveformBenchmark : IBenchmark
{
    public string Name => "waveform";

    public string Description => "Waveform JSON+SVG of 1 min and 10 min MP3s: time and memory [--runs N]";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var runs = AvBench.IntOption(args, "--runs", 5);
        var generator = new WaveformGenerator(new FfmpegRunner());
        var output = Path.Combine(AvBench.WorkDirectory, "waveform-out");
        Directory.CreateDirectory(output);
        Console.WriteLine($"{Environment.ProcessorCount} cores, server GC {System.Runtime.GCSettings.IsServerGC}");
        Console.WriteLine("| input | median s | allocated per run MiB | managed heap after MiB | RSS after MiB | peak RSS MiB |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- |");

        foreach (var minutes in new[] { 1, 10 })
        {
            var input = await AvBench.InputAsync(
                $"tone-noise-{minutes}min.mp3",
                [
                    "-f", "lavfi", "-i", $"sine=frequency=220:duration={minutes * 60}:sample_rate=44100",
                    "-f", "lavfi", "-i", $"anoisesrc=duration={minutes * 60}:amplitude=0.2:sample_rate=44100",
                    "-filter_complex", "[0][1]amix=inputs=2", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k",
                ],
                cancellationToken);

            // One warm-up run so JIT and the first ffmpeg start are not counted.
            await generator.GenerateAsync(input, Path.Combine(output, "w.json"), Path.Combine(output, "w.svg"), null, null, cancellationToken);
            var times = new List<double>();
            var allocated = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var before = GC.GetTotalAllocatedBytes(precise: true);
                var watch = Stopwatch.StartNew();
                await generator.GenerateAsync(input, Path.Combine(output, "w.json"), Path.Combine(output, "w.svg"), null, null, cancellationToken);
                times.Add(watch.Elapsed.TotalSeconds);
                allocated.Add((GC.GetTotalAllocatedBytes(precise: true) - before) / 1048576.0);
            }

            var heap = GC.GetTotalMemory(forceFullCollection: true) / 1048576.0;
            Console.WriteLine($"| {minutes} min MP3 (44.1 kHz stereo, 128 kb/s) | {AvBench.F(AvBench.Median(times))} | " +
                $"{AvBench.F(AvBench.Median(allocated))} | {AvBench.F(heap)} | {AvBench.F(AvBench.ProcStatusMiB("VmRSS"), "0")} | {AvBench.F(AvBench.ProcStatusMiB("VmHWM"), "0")} |");
        }

        Directory.Delete(output, recursive: true);
        return 0;
    }
}
