using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
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
/// End to end through the HTTP API: upload large photos, wait until each asset's three thumbnails are ready.
/// Reports images per second with the default worker slots, and the process's peak RSS (VmHWM) while 8 large
/// images are processed at once. The server runs in this process against a fresh database on KILN_BENCH_PG.
/// </summary>
internal sealed class ImageApiBenchmark : IBenchmark
{
    public string Name => "image-api";

    public string Description => "upload → three thumbnails ready, images/s and peak RSS with 8 large images in flight (options: --images N --rounds N --pipeline default --input FILE --poll)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var images = Arg(args, "--images", 40);
        var rounds = Arg(args, "--rounds", 3);
        var server = Environment.GetEnvironmentVariable("KILN_BENCH_PG")
            ?? throw new InvalidOperationException("Set KILN_BENCH_PG to a PostgreSQL connection string (a fresh database is created on it).");
        var database = "kiln_bench_" + Guid.NewGuid().ToString("N")[..8];
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = database }.ConnectionString;
        var data = Directory.CreateTempSubdirectory("kiln-bench-images-").FullName;
        // --input FILE: the image every upload sends (the corpus JPEG by default; bench/run-image-e2e.sh passes INPUT).
        var inputIndex = Array.IndexOf(args, "--input");
        var input = inputIndex >= 0 && inputIndex + 1 < args.Length
            ? args[inputIndex + 1]
            : Path.Combine(ResizeBenchmark.RepoRoot(), "..", "shared", "corpus", "2569067123_aca715a2ee_o.jpg");
        var photo = await File.ReadAllBytesAsync(input, cancellationToken);
        var uploadName = "photo-{0}" + Path.GetExtension(input);

        await using var app = KilnApp.Build(
        [
            "--urls=http://127.0.0.1:0", $"--ConnectionStrings:Kiln={connectionString}", $"--Kiln:DataDirectory={data}",
            "--Logging:LogLevel:Default=Warning", "--Kiln:Security:CreateAdminKeyOnFirstStart=false",
            "--Kiln:Security:PerKeyRequestsPerSecond=0", "--Kiln:Security:GlobalRequestsPerSecond=0",
        ]);
        await KilnApp.PrepareAsync(app, cancellationToken);
        await app.StartAsync(cancellationToken);
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var key = await app.Services.GetRequiredService<ApiKeyStore>().CreateAsync("bench", Roles.Admin, cancellationToken);
            using var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(10) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.Secret);
            // --pipeline default: no settings, so the default image pipeline runs (probe, optimize, thumbnails),
            // the figure bench/run-image-e2e.sh sets against the Node reference.
            var defaultPipeline = Array.IndexOf(args, "default") > 0 && Array.IndexOf(args, "--pipeline") >= 0;
            var settings = defaultPipeline ? null : """{"jobs":["image.thumbnails"]}""";
            // The client learns that jobs ended from the hub, as a real client would; --poll reads each job every 20 ms
            // instead (what this benchmark did before, to measure what the polling cost).
            await using var waiter = args.Contains("--poll") ? null : await JobWaiter.ConnectAsync(new Uri(address), key.Secret, cancellationToken);

            await RunBatchAsync(http, waiter, photo, uploadName, 4, settings, cancellationToken);
            var rates = new List<double>();
            var cpus = new List<double>();
            using var process = Process.GetCurrentProcess();
            for (var round = 0; round < rounds; round++)
            {
                process.Refresh();
                var cpu = process.TotalProcessorTime;
                var jit = System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds;
                var watch = Stopwatch.StartNew();
                await RunBatchAsync(http, waiter, photo, uploadName, images, settings, cancellationToken);
                process.Refresh();
                rates.Add(images / watch.Elapsed.TotalSeconds);
                cpus.Add((process.TotalProcessorTime - cpu).TotalMilliseconds / images);
                // The JIT's share shows why a first round is slower: code paths only many uploads at once reach.
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round + 1}: {images} images in {watch.Elapsed.TotalSeconds:F2} s = {rates[^1]:F2} images/s, cpu {cpus[^1]:F1} ms/image, jit {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds - jit:F0} ms"));
            }

            var ordered = rates.Order().ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"image-api median {ordered[ordered.Count / 2]:F2} images/s (upload + {(defaultPipeline ? "default pipeline" : "3 thumbnails")} of {Path.GetFileName(input)}, default slots)"));
            Console.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"kiln e2e median={ordered[ordered.Count / 2]:F2} images/s cpu-ms/image={cpus.Order().ElementAt(cpus.Count / 2):F1} peak-rss-mib={PeakRssBytes() / 1048576.0:F0} rounds=[{string.Join(", ", rates.Select(r => r.ToString("F2", CultureInfo.InvariantCulture)))}]"));
            if (defaultPipeline)
            {
                return 0;
            }

            // Peak memory: 8 large images in flight at once, all slots busy.
            using (var wide = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(10) })
            {
                wide.DefaultRequestHeaders.Authorization = http.DefaultRequestHeaders.Authorization;
                var before = PeakRssBytes();
                await RunBatchAsync(wide, waiter, photo, uploadName, 8, """{"jobs":["image.thumbnails","image.optimize","image.enhance"]}""", cancellationToken);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak RSS: {PeakRssBytes() / 1048576.0:F0} MiB after 8 large images (thumbnails + optimize + enhance), {before / 1048576.0:F0} MiB before; current {Environment.WorkingSet / 1048576.0:F0} MiB"));
            }
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

    /// <summary>Uploads <paramref name="count"/> copies concurrently and waits until every job of every asset is done.</summary>
    private static async Task RunBatchAsync(HttpClient http, JobWaiter? waiter, byte[] photo, string uploadName, int count, string? settings, CancellationToken ct)
    {
        var uploads = Enumerable.Range(0, count).Select(async i =>
        {
            using var form = new MultipartFormDataContent { { new ByteArrayContent(photo), "file", string.Format(CultureInfo.InvariantCulture, uploadName, i) } };
            if (settings is not null)
            {
                form.Add(new StringContent(settings), "settings");
            }

            using var response = await http.PostAsync("/api/uploads", form, ct);
            response.EnsureSuccessStatusCode();
            var body = await response.Content.ReadFromJsonAsync<JsonObject>(ct);
            return body!["assets"]![0]!["jobs"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()).ToList();
        });
        var jobs = (await Task.WhenAll(uploads)).SelectMany(j => j).ToList();
        if (waiter is not null)
        {
            await waiter.WaitAsync(jobs, ct);
            waiter.Forget(jobs);
            return;
        }

        foreach (var id in jobs)
        {
            while (true)
            {
                var job = await http.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}", ct);
                var state = job!["state"]!.GetValue<string>();
                if (state == "completed")
                {
                    break;
                }

                if (state is "failed" or "cancelled")
                {
                    throw new InvalidOperationException($"job {id} {state}: {job["errorMessage"]}");
                }

                await Task.Delay(20, ct);
            }
        }
    }

    /// <summary>The process's peak resident set (VmHWM), which the kernel keeps for us.</summary>
    private static long PeakRssBytes()
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    private static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
