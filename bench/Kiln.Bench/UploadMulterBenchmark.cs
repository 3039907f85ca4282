using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Kiln.Bench;

/// <summary>
/// <c>upload-multer</c> (issue 14 target 4): one large file over loopback as a plain multipart upload, Kiln's
/// <c>POST /api/uploads</c> against Express 5 + multer 2 with disk storage (bench/node-e2e/upload.mjs), each server
/// in its own process, alternating rounds, the same client for both. Reports MB/s, the server process's CPU per
/// upload and its RSS growth during the upload (its VmHWM, reset before each upload, minus its VmRSS before).
/// </summary>
internal sealed class UploadMulterBenchmark : IBenchmark
{
    public string Name => "upload-multer";

    public string Description => "1 GiB multipart upload: Kiln POST /api/uploads vs Express + multer (disk), MB/s, server CPU and RSS growth (--mib N --rounds N)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var mib = HubLatencyBenchmark.Arg(args, "--mib", 1024);
        var rounds = HubLatencyBenchmark.Arg(args, "--rounds", 3);
        var work = Directory.CreateTempSubdirectory("kiln-bench-upload-").FullName;
        var source = Path.Combine(work, "source.bin");
        var nodeDir = Directory.CreateDirectory(Path.Combine(work, "node")).FullName;
        await TusUploadBenchmark.WriteRandomFileAsync(source, mib * 1024L * 1024, cancellationToken);
        var connectionString = await HubBench.CreateDatabaseAsync("kiln_bench_upload", cancellationToken);
        try
        {
            await using var kiln = await HubBench.StartServerAsync(connectionString, [$"Kiln:Uploads:MaxFileBytes={(mib + 1) * 1024L * 1024}"], cancellationToken);
            var nodePort = HubBench.FreePort();
            var script = Path.Combine(ResizeBenchmark.RepoRoot(), "bench", "node-e2e", "upload.mjs");
            await using var node = ChildProcess.Start("node", [script, nodePort.ToString(CultureInfo.InvariantCulture), nodeDir], new Dictionary<string, string>());
            await node.WaitForLineAsync("NODE-UPLOAD-READY", TimeSpan.FromSeconds(30), cancellationToken);

            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(30) };
            var sides = new (string Name, int Pid, Func<Task<Func<Task>>> Upload)[]
            {
                ("kiln", kiln.Process.Id, () => PostKilnAsync(http, kiln, source, cancellationToken)),
                ("multer", node.Id, () => PostNodeAsync(http, nodePort, source, cancellationToken)),
            };
            // One small unmeasured upload each first: the first request of a process pays for JIT and buffer pools.
            var warmup = Path.Combine(work, "warmup.bin");
            await TusUploadBenchmark.WriteRandomFileAsync(warmup, 64L * 1024 * 1024, cancellationToken);
            await (await PostKilnAsync(http, kiln, warmup, cancellationToken))();
            await (await PostNodeAsync(http, nodePort, warmup, cancellationToken))();
            var results = sides.ToDictionary(s => s.Name, _ => new List<(double MBps, double CpuSeconds, double RssGrowthMiB)>());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{mib} MiB multipart upload, {rounds} alternating rounds, load average {File.ReadAllText("/proc/loadavg").Trim()}"));
            for (var round = 0; round < rounds; round++)
            {
                foreach (var (name, pid, upload) in round % 2 == 0 ? sides : sides.Reverse())
                {
                    await File.WriteAllTextAsync($"/proc/{pid}/clear_refs", "5", cancellationToken); // VmHWM := VmRSS
                    var rssBefore = Status(pid, "VmRSS:");
                    var cpuBefore = CpuSeconds(pid);
                    var watch = Stopwatch.StartNew();
                    var cleanUp = await upload();
                    watch.Stop();
                    var result = (mib * 1024.0 * 1024 / 1e6 / watch.Elapsed.TotalSeconds, CpuSeconds(pid) - cpuBefore, (Status(pid, "VmHWM:") - rssBefore) / 1024.0);
                    results[name].Add(result);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round + 1} {name,-6}: {result.Item1:F0} MB/s, server CPU {result.Item2:F2} s, RSS growth {result.Item3:F1} MiB (load {File.ReadAllText("/proc/loadavg").Split(' ')[0]})"));
                    await cleanUp();
                }
            }

            foreach (var (name, list) in results)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"upload {name} median: {HubBench.Median(list.Select(r => r.MBps)):F0} MB/s, server CPU {HubBench.Median(list.Select(r => r.CpuSeconds)):F2} s per upload, RSS growth {HubBench.Median(list.Select(r => r.RssGrowthMiB)):F1} MiB (max {list.Max(r => r.RssGrowthMiB):F1})"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"kiln / multer throughput: {HubBench.Median(results["kiln"].Select(r => r.MBps)) / HubBench.Median(results["multer"].Select(r => r.MBps)):F2}x; load average after {File.ReadAllText("/proc/loadavg").Trim()}"));
            return 0;
        }
        finally
        {
            await HubBench.DropDatabaseAsync(connectionString);
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Uploads to Kiln; returns how to delete what it stored (after the clock stopped).</summary>
    private static async Task<Func<Task>> PostKilnAsync(HttpClient http, BenchServer kiln, string source, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(kiln.BaseAddress, "/api/uploads")) { Content = Form(source, ("settings", """{"jobs":[]}""")) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", kiln.AdminKey);
        using var response = await http.SendAsync(request, ct);
        response.EnsureSuccessStatusCode();
        var asset = (await response.Content.ReadFromJsonAsync<JsonObject>(ct))!["assets"]![0]!["id"]!.GetValue<Guid>();
        return async () => (await kiln.Admin.DeleteAsync($"/api/assets/{asset}", ct)).EnsureSuccessStatusCode();
    }

    private static async Task<Func<Task>> PostNodeAsync(HttpClient http, int port, string source, CancellationToken ct)
    {
        using var response = await http.PostAsync($"http://127.0.0.1:{port}/upload", Form(source), ct);
        response.EnsureSuccessStatusCode();
        var name = (await response.Content.ReadFromJsonAsync<JsonObject>(ct))!["name"]!.GetValue<string>();
        return async () => (await http.DeleteAsync($"http://127.0.0.1:{port}/upload/{name}", ct)).EnsureSuccessStatusCode();
    }

    /// <summary>The same multipart body for both servers: the file streamed from disk in 128 KiB reads.</summary>
    private static MultipartFormDataContent Form(string source, params (string Name, string Value)[] fields)
    {
        var file = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var form = new MultipartFormDataContent { { new StreamContent(file, 128 * 1024), "file", "bench.bin" } };
        foreach (var (name, value) in fields)
        {
            form.Add(new StringContent(value), name);
        }

        return form;
    }

    private static long Status(int pid, string field)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    /// <summary>utime + stime of a process from /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).</summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }
}
