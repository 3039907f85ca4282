using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;

namespace Kiln.Bench;

/// <summary>
/// <c>hub-latency [--clients 1000] [--seconds 15] [--interval-ms 1000] [--rounds 3] [--burst] [--in-process]</c>: a
/// server process, one <c>kiln worker</c> process running every job, and N hub connections each following its own
/// job. Each job reports progress every interval with the worker's clock in it; the client records how long each
/// report took to arrive (worker → server → hub → client), and the server's resident memory is sampled throughout.
/// Jobs start at random phases within one interval (as independent jobs would); <c>--burst</c> makes them all
/// report at the same instants instead, the worst case. <c>--in-process</c> runs the jobs in the server.
/// </summary>
internal sealed class HubLatencyBenchmark : IBenchmark
{
    public string Name => "hub-latency";

    public string Description => "worker-to-client progress latency and server memory with N hub connections";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var clients = Arg(args, "--clients", 1000);
        var seconds = Arg(args, "--seconds", 15);
        var interval = Arg(args, "--interval-ms", 1000);
        var rounds = Arg(args, "--rounds", 3);
        var inProcess = args.Contains("--in-process");
        var burst = args.Contains("--burst");
        var ct = cancellationToken;

        var connectionString = await HubBench.CreateDatabaseAsync("kiln_bench_hub", ct);
        try
        {
            await using var db = NpgsqlDataSource.Create(connectionString);
            // --in-process runs the jobs in the server itself: the same path minus the worker's hop, for comparison.
            await using var server = await HubBench.StartServerAsync(connectionString, inProcess ? [$"Kiln:Workers:Slots:test={clients}"] : [], ct);
            var rssStart = HubBench.RssBytes(server.Process.Id);
            await using var worker = inProcess ? null : await HubBench.StartWorkerAsync(server, await HubBench.CreateWorkerTokenAsync(server, ct), "bench", clients, ct);

            var watch = Stopwatch.StartNew();
            var hubs = new HubBenchClient[clients];
            await Parallel.ForEachAsync(Enumerable.Range(0, clients), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct }, async (i, c) =>
                hubs[i] = await HubBenchClient.ConnectAsync(server.BaseAddress, server.AdminKey, c));
            Console.WriteLine($"{clients} hub connections in {watch.Elapsed.TotalSeconds:F1} s; server RSS {Mb(rssStart)} MB before, {Mb(HubBench.RssBytes(server.Process.Id))} MB after");

            var results = new List<(double P50, double P90, double P99, double Max, int Count, long PeakRss)>();
            var parameters = new JsonObject { ["durationMs"] = seconds * 1000, ["steps"] = Math.Max(1, seconds * 1000 / interval), ["stamp"] = true };
            for (var round = 1; round <= rounds; round++)
            {
                var ids = await HubBench.InsertHeldJobsAsync(db, clients, parameters, ct, burst ? 0 : interval);
                await Parallel.ForEachAsync(Enumerable.Range(0, clients), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = ct }, async (i, c) =>
                    await hubs[i].FollowAsync(ids[i], c));
                foreach (var hub in hubs)
                {
                    hub.TakeLatencies();
                }

                await HubBench.ReleaseAsync(db, ids, ct);
                var peak = 0L;
                var all = Task.WhenAll(hubs.Select(h => h.Completed));
                var deadline = DateTime.UtcNow.AddSeconds(seconds + 120);
                while (!all.IsCompleted && DateTime.UtcNow < deadline)
                {
                    peak = Math.Max(peak, HubBench.RssBytes(server.Process.Id));
                    await Task.WhenAny(all, Task.Delay(1000, ct));
                }

                if (!all.IsCompleted)
                {
                    Console.Error.WriteLine($"round {round}: {hubs.Count(h => !h.Completed.IsCompleted)} clients never saw their job complete");
                }

                var latencies = hubs.SelectMany(h => h.TakeLatencies()).Order().ToList();
                var r = (HubBench.Percentile(latencies, 50), HubBench.Percentile(latencies, 90), HubBench.Percentile(latencies, 99), latencies.LastOrDefault(), latencies.Count, peak);
                results.Add(r);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"round {round}: {r.Item5} progress events, latency p50 {r.Item1:F1} ms, p90 {r.Item2:F1} ms, p99 {r.Item3:F1} ms, max {r.Item4:F1} ms; server RSS peak {Mb(peak)} MB"));
            }

            Console.WriteLine();
            Console.WriteLine("| clients | events/s | p50 ms | p90 ms | p99 ms | max ms | server RSS peak MB |");
            Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {clients} | {clients * 1000.0 / interval:F0} | {HubBench.Median(results.Select(r => r.P50)):F1} | {HubBench.Median(results.Select(r => r.P90)):F1} | {HubBench.Median(results.Select(r => r.P99)):F1} | {HubBench.Median(results.Select(r => r.Max)):F1} | {Mb((long)HubBench.Median(results.Select(r => (double)r.PeakRss)))} |"));
            Console.WriteLine($"(medians of {rounds} rounds of {seconds} s)");
            foreach (var hub in hubs)
            {
                await hub.DisposeAsync();
            }

            return 0;
        }
        finally
        {
            await HubBench.DropDatabaseAsync(connectionString);
        }
    }

    internal static int Arg(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static string Mb(long bytes) => (bytes / (1024.0 * 1024)).ToString("F0", CultureInfo.InvariantCulture);
}
