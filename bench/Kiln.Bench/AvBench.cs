using System.Diagnostics;
using System.Globalization;
using Kiln.Media.FFmpeg;

namespace Kiln.Bench;

/// <summary>Shared pieces of the audio/video benchmarks: generated inputs cached in a temp dir, medians, process memory.</summary>
internal static class AvBench
{
    public static string WorkDirectory { get; } = Path.Combine(Path.GetTempPath(), "kiln-bench-av");

    /// <summary>Generates <paramref name="name"/> with ffmpeg once; later runs reuse it.</summary>
    public static async Task<string> InputAsync(string name, IReadOnlyList<string> ffmpegArgs, CancellationToken ct)
    {
        Directory.CreateDirectory(WorkDirectory);
        var path = Path.Combine(WorkDirectory, name);
        if (File.Exists(path))
        {
            return path;
        }

        Console.WriteLine($"generating {path} ...");
        var partial = path + ".partial" + Path.GetExtension(path);
        await new FfmpegRunner().RunAsync([.. ffmpegArgs, "-y", partial], null, "generate", null, ct);
        File.Move(partial, path);
        return path;
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static int IntOption(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>A value in kB from <c>/proc/self/status</c> (VmRSS: resident now, VmHWM: peak resident), in MiB.</summary>
    public static double ProcStatusMiB(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith(key + ":", StringComparison.Ordinal))
            {
                var kb = long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                return kb / 1024.0;
            }
        }

        return double.NaN;
    }

    /// <summary>
    /// CPU time of this process and of its reaped children (ffmpeg, ffprobe) from <c>/proc/self/stat</c>. Unlike wall
    /// time it hardly moves when other work shares the machine, so it separates Kiln's overhead from noise.
    /// Ticks are USER_HZ, which is 100 on Linux.
    /// </summary>
    public static (TimeSpan Self, TimeSpan Children) CpuTimes()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

        // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime 15, cutime 16, cstime 17.
        static TimeSpan Ticks(string a, string b) =>
            TimeSpan.FromMilliseconds((long.Parse(a, CultureInfo.InvariantCulture) + long.Parse(b, CultureInfo.InvariantCulture)) * 10);
        return (Ticks(fields[11], fields[12]), Ticks(fields[13], fields[14]));
    }

    /// <summary>Runs a command the way a person would by hand: a bare process, output drained and ignored.</summary>
    public static async Task<TimeSpan> RunBareAsync(string fileName, IReadOnlyList<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.BaseStream.CopyToAsync(Stream.Null, ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        await stdout;
        var errors = await stderr;
        watch.Stop();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} failed ({process.ExitCode}): {errors}");
        }

        return watch.Elapsed;
    }

    public static string F(double value, string format = "0.00") => value.ToString(format, CultureInfo.InvariantCulture);
}
