using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Hosting;
using Kiln.Security;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kiln.Bench;

/// <summary>
/// A large file over loopback, resumable (tus, PATCH chunks) against plain multipart <c>POST /api/uploads</c>, in
/// alternating rounds so both see the same machine load. Reports throughput medians, process CPU per upload and
/// the growth of resident memory during each upload (VmHWM reset before it). The server runs in this process
/// against a fresh database on KILN_BENCH_PG; the client streams the file from disk in small reads, so memory
/// growth is the server's.
/// </summary>
internal sealed class TusUploadBenchmark : IBenchmark
{
    public string Name => "tus-upload";

    public string Description => "1 GiB over loopback: tus PATCH chunks vs multipart POST, MB/s, CPU and RSS growth (options: --mib N --chunk-mib N --rounds N)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var mib = Arg(args, "--mib", 1024);
        var chunkMib = Arg(args, "--chunk-mib", 32);
        var rounds = Arg(args, "--rounds", 3);
        var server = Environment.GetEnvironmentVariable("KILN_BENCH_PG")
            ?? throw new InvalidOperationException("Set KILN_BENCH_PG to a PostgreSQL connection string (a fresh database is created on it).");
        var database = "kiln_bench_" + Guid.NewGuid().ToString("N")[..8];
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = database }.ConnectionString;
        var data = Directory.CreateTempSubdirectory("kiln-bench-tus-").FullName;
        var source = Path.Combine(data, "source.bin");
        await WriteRandomFileAsync(source, mib * 1024L * 1024, cancellationToken);

        await using var app = KilnApp.Build(
        [
            "--urls=http://127.0.0.1:0", $"--ConnectionStrings:Kiln={connectionString}", $"--Kiln:DataDirectory={data}",
            "--Logging:LogLevel:Default=Warning", "--Kiln:Security:CreateAdminKeyOnFirstStart=false",
            "--Kiln:Security:PerKeyRequestsPerSecond=0", "--Kiln:Security:GlobalRequestsPerSecond=0",
            $"--Kiln:Uploads:MaxFileBytes={(mib + 1) * 1024L * 1024}",
        ]);
        await KilnApp.PrepareAsync(app, cancellationToken);
        await app.StartAsync(cancellationToken);
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var key = await app.Services.GetRequiredService<ApiKeyStore>().CreateAsync("bench", Roles.Admin, cancellationToken);
            using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(30) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.Secret);
            var results = new Dictionary<string, List<(double MBps, double CpuSeconds, double RssGrowthMiB)>> { ["tus"] = [], ["post"] = [] };
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{mib} MiB file, tus PATCH chunks of {chunkMib} MiB, {rounds} alternating rounds, load average {File.ReadAllText("/proc/loadavg").Trim()}"));
            for (var round = 0; round < rounds; round++)
            {
                foreach (var way in new[] { "tus", "post" })
                {
                    var result = await MeasureAsync(http, way, source, chunkMib * 1024 * 1024, cancellationToken);
                    results[way].Add(result);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round + 1} {way,-4}: {result.MBps:F0} MB/s, CPU {result.CpuSeconds:F2} s, RSS growth {result.RssGrowthMiB:F1} MiB"));
                }
            }

            foreach (var (way, list) in results)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{way} median: {Median(list.Select(r => r.MBps)):F0} MB/s, CPU {Median(list.Select(r => r.CpuSeconds)):F2} s per upload, RSS growth {Median(list.Select(r => r.RssGrowthMiB)):F1} MiB (max {list.Max(r => r.RssGrowthMiB):F1})"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tus / post throughput: {Median(results["tus"].Select(r => r.MBps)) / Median(results["post"].Select(r => r.MBps)):P1}; load average after {File.ReadAllText("/proc/loadavg").Trim()}"));
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            Directory.Delete(data, recursive: true);
            NpgsqlConnection.ClearAllPools();
            await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false }.ConnectionString);
            await conn.OpenAsync(CancellationToken.None);
            await using var drop = new NpgsqlCommand($"drop database if exists {database} with (force)", conn);
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }

        return 0;
    }

    /// <summary>One upload, timed from the first request to the asset existing; then its probe is awaited and the asset deleted, untimed.</summary>
    private static async Task<(double MBps, double CpuSeconds, double RssGrowthMiB)> MeasureAsync(HttpClient http, string way, string source, int chunk, CancellationToken ct)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        await File.WriteAllTextAsync("/proc/self/clear_refs", "5", ct); // resets VmHWM to the current RSS
        var rssBefore = ReadStatusKiB("VmRSS:");
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var length = new FileInfo(source).Length;
        var asset = way == "tus" ? await TusAsync(http, source, length, chunk, ct) : await PostAsync(http, source, ct);
        watch.Stop();
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        var growth = (ReadStatusKiB("VmHWM:") - rssBefore) / 1024.0;

        var details = await http.GetFromJsonAsync<JsonObject>($"/api/assets/{asset}", ct);
        foreach (var job in details!["jobs"]!.AsArray())
        {
            while ((await http.GetFromJsonAsync<JsonObject>($"/api/jobs/{job!["id"]}", ct))!["state"]!.GetValue<string>() is "queued" or "running")
            {
                await Task.Delay(100, ct);
            }
        }

        using var deleted = await http.DeleteAsync($"/api/assets/{asset}", ct);
        deleted.EnsureSuccessStatusCode();
        return (length / 1e6 / watch.Elapsed.TotalSeconds, cpu, growth);
    }

    private static async Task<Guid> TusAsync(HttpClient http, string source, long length, int chunk, CancellationToken ct)
    {
        using var create = new HttpRequestMessage(HttpMethod.Post, "/api/tus");
        create.Headers.Add("Tus-Resumable", "1.0.0");
        create.Headers.Add("Upload-Length", length.ToString(CultureInfo.InvariantCulture));
        create.Headers.Add("Upload-Metadata", "filename " + Convert.ToBase64String("bench.bin"u8) + ",settings " + Convert.ToBase64String("""{"jobs":[]}"""u8));
        using var created = await http.SendAsync(create, ct);
        created.EnsureSuccessStatusCode();
        var location = created.Headers.Location!.OriginalString;

        await using var file = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        for (long offset = 0; offset < length; offset += chunk)
        {
            var size = Math.Min(chunk, length - offset);
            file.Position = offset;
            using var patch = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new StreamContent(new WindowStream(file, size), 128 * 1024) };
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/offset+octet-stream");
            patch.Content.Headers.ContentLength = size;
            patch.Headers.Add("Tus-Resumable", "1.0.0");
            patch.Headers.Add("Upload-Offset", offset.ToString(CultureInfo.InvariantCulture));
            using var response = await http.SendAsync(patch, ct);
            response.EnsureSuccessStatusCode();
            if (offset + size == length)
            {
                return Guid.Parse(response.Headers.GetValues("Kiln-Asset-Id").Single());
            }
        }

        throw new InvalidOperationException("the last PATCH did not finish the upload");
    }

    private static async Task<Guid> PostAsync(HttpClient http, string source, CancellationToken ct)
    {
        await using var file = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        using var form = new MultipartFormDataContent
        {
            { new StreamContent(file, 128 * 1024), "file", "bench.bin" },
            { new StringContent("""{"jobs":[]}"""), "settings" },
        };
        using var response = await http.PostAsync("/api/uploads", form, ct);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>(ct))!["assets"]![0]!["id"]!.GetValue<Guid>();
    }

    internal static async Task WriteRandomFileAsync(string path, long length, CancellationToken ct)
    {
        var block = new byte[4 * 1024 * 1024];
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        for (long written = 0; written < length; written += block.Length)
        {
            RandomNumberGenerator.Fill(block);
            await file.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, length - written)), ct);
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    private static long ReadStatusKiB(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>The next <c>length</c> bytes of a stream, read in place: a PATCH body without copying the chunk into memory.</summary>
    private sealed class WindowStream(Stream inner, long length) : Stream
    {
        private readonly long _length = length;
        private long _left = length;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position
        {
            get => _length - _left;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
            _left -= n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken);
            _left -= n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
