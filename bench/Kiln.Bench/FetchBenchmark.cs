using System.Diagnostics;
using System.Globalization;
using Kiln.Fetch;
using Kiln.Processing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Kiln.Bench;

/// <summary>
/// <c>fetch</c>: Kiln's <see cref="DirectDownloader"/> (the production HttpClient, AddressGuard and file writing)
/// against <c>curl -o</c>, alternating rounds, from an origin in a separate process (<c>fetch origin</c>), so this
/// process's CPU time is the downloader's own. Then pause → resume → complete, with the bytes counted by the origin.
///   fetch origin FILE PORT         serves FILE at /file with Range; GET /sent = body bytes sent so far
///   fetch URL-BASE [rounds] [dir]  runs the comparison (bench/run-fetch.sh does both)
/// </summary>
internal sealed class FetchBenchmark : IBenchmark
{
    public string Name => "fetch";

    public string Description => "direct download vs curl -o from a loopback origin; pause/resume bytes";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        if (args[0] == "origin")
        {
            return await ServeAsync(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), cancellationToken);
        }

        var origin = new Uri(args[0]);
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
        var dir = args.Length > 2 ? args[2] : Path.Combine(Path.GetTempPath(), "kiln-fetch-bench");
        Directory.CreateDirectory(dir);
        await using var services = Services();
        var downloader = services.GetRequiredService<DirectDownloader>();
        var file = new Uri(origin, "/file");
        using var http = new HttpClient();

        for (var round = 1; round <= rounds; round++)
        {
            var kilnDir = Path.Combine(dir, "kiln");
            DirectDownloader.Forget(kilnDir);
            var (wall, cpu, rssGrowth, size) = await MeasureKilnAsync(downloader, file, kilnDir, cancellationToken);
            Report("kiln", round, size, wall, cpu, rssGrowth);
            DirectDownloader.Forget(kilnDir);

            var curlFile = Path.Combine(dir, "curl.out");
            var (cwall, ccpu) = await MeasureCurlAsync(file, curlFile, cancellationToken);
            Report("curl", round, new FileInfo(curlFile).Length, cwall, ccpu, null);
            File.Delete(curlFile);
        }

        // Pause → resume → complete: cancel once a third has arrived, run again; the origin counts what it sent.
        var resumeDir = Path.Combine(dir, "resume");
        DirectDownloader.Forget(resumeDir);
        var before = long.Parse(await http.GetStringAsync(new Uri(origin, "/sent"), cancellationToken), CultureInfo.InvariantCulture);
        using (var pause = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            var progress = new Progress(p =>
            {
                if (p.Percent >= 33)
                {
                    pause.Cancel();
                }
            });
            try
            {
                await downloader.DownloadAsync(file, resumeDir, progress, pause.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // The pause.
            }
        }

        var partial = new FileInfo(Path.Combine(resumeDir, "download.part")).Length;
        var result = await downloader.DownloadAsync(file, resumeDir, new Progress(_ => { }), cancellationToken);
        await Task.Delay(500, cancellationToken); // let the origin finish counting the last writes
        var sent = long.Parse(await http.GetStringAsync(new Uri(origin, "/sent"), cancellationToken), CultureInfo.InvariantCulture) - before;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fetch resume: size {result.Size} B, paused at {partial} B, resumed transfer {result.Transferred} B, origin sent {sent} B in total = {(double)sent / result.Size:F4}x the file, restarted={result.Restarted}"));
        DirectDownloader.Forget(resumeDir);
        return 0;
    }

    /// <summary>The origin: a file with Range support, and a counter of body bytes sent.</summary>
    public static async Task<int> ServeAsync(string path, int port, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        long sent = 0;
        app.Use(async (context, next) =>
        {
            var inner = context.Response.Body;
            await using var counting = new CountingStream(inner, n => Interlocked.Add(ref sent, n));
            context.Response.Body = counting;
            await next(context);
        });
        // A stream result, not a sendfile one, so the counting body sees every byte.
        app.MapGet("/file", () => Results.Stream(File.OpenRead(path), "application/octet-stream", lastModified: File.GetLastWriteTimeUtc(path), enableRangeProcessing: true));
        app.MapGet("/sent", () => Interlocked.Read(ref sent).ToString(CultureInfo.InvariantCulture));
        await app.StartAsync(ct);
        await app.WaitForShutdownAsync(ct);
        return 0;
    }

    private static ServiceProvider Services()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddOptions<FetchOptions>().Configure(o => o.AllowedNetworks = ["127.0.0.1/32"]);
        services.AddSingleton<AddressGuard>();
        services.AddSingleton<DirectDownloader>();
        services.AddHttpClient(DirectDownloader.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(FetchEndpoints.CreateHandler);
        return services.BuildServiceProvider();
    }

    private static async Task<(TimeSpan Wall, TimeSpan Cpu, long RssGrowth, long Size)> MeasureKilnAsync(DirectDownloader downloader, Uri file, string dir, CancellationToken ct)
    {
        GC.Collect();
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        var baseline = self.WorkingSet64;
        var peak = baseline;
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                self.Refresh();
                peak = Math.Max(peak, self.WorkingSet64);
                await Task.Delay(20, CancellationToken.None);
            }
        }, CancellationToken.None);
        var cpu = self.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var result = await downloader.DownloadAsync(file, dir, new Progress(_ => { }), ct);
        var wall = clock.Elapsed;
        self.Refresh();
        var used = self.TotalProcessorTime - cpu;
        await sampling.CancelAsync();
        await sampler;
        return (wall, used, peak - baseline, result.Size);
    }

    private static async Task<(TimeSpan Wall, TimeSpan Cpu)> MeasureCurlAsync(Uri file, string output, CancellationToken ct)
    {
        // curl's CPU time from /usr/bin/time (user + system seconds), the same clock as TotalProcessorTime.
        var psi = new ProcessStartInfo("/usr/bin/time") { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-f", "%U %S", "curl", "-s", "-o", output, "--", file.AbsoluteUri])
        {
            psi.ArgumentList.Add(a);
        }

        var clock = Stopwatch.StartNew();
        using var curl = Process.Start(psi)!;
        var times = await curl.StandardError.ReadToEndAsync(ct);
        await curl.WaitForExitAsync(ct);
        var wall = clock.Elapsed;
        var parts = times.Trim().Split('\n')[^1].Split(' ');
        var cpu = TimeSpan.FromSeconds(double.Parse(parts[0], CultureInfo.InvariantCulture) + double.Parse(parts[1], CultureInfo.InvariantCulture));
        return (wall, cpu);
    }

    private static void Report(string who, int round, long size, TimeSpan wall, TimeSpan cpu, long? rssGrowth)
    {
        var gib = size / (double)(1L << 30);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fetch {who} round {round}: {size} B in {wall.TotalSeconds:F2} s = {size / wall.TotalSeconds / (1 << 20):F0} MiB/s, CPU {cpu.TotalSeconds / gib:F2} s/GiB{(rssGrowth is { } r ? $", RSS growth {r / (1 << 20)} MiB" : "")}"));
    }

    private sealed class Progress(Action<JobProgress> report) : IProgress<JobProgress>
    {
        public void Report(JobProgress value) => report(value);
    }

    private sealed class CountingStream(Stream inner, Action<int> onWrite) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            onWrite(count);
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            onWrite(buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
