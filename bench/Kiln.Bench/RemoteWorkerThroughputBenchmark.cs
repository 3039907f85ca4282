using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;

namespace Kiln.Bench;

/// <summary>
/// <c>remote-worker-throughput [--jobs 5000] [--slots 16] [--rounds 3]</c>: short jobs (test.sleep of 0 ms, one
/// progress report) run by the server's in-process workers, then by one <c>kiln worker</c> process with the same
/// slots, on the same machine and database. Jobs are inserted held and released at once, so the figure is the
/// rate at which leased, run and completed jobs flow, not the enqueue rate.
/// </summary>
internal sealed class RemoteWorkerThroughputBenchmark : IBenchmark
{
    public string Name => "remote-worker-throughput";

    public string Description => "short-job throughput of a remote worker process vs in-process workers";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var jobs = HubLatencyBenchmark.Arg(args, "--jobs", 5000);
        var slots = HubLatencyBenchmark.Arg(args, "--slots", 16);
        var rounds = HubLatencyBenchmark.Arg(args, "--rounds", 3);
        var rows = new List<(string Mode, List<double> Rates)>();
        foreach (var remote in new[] { false, true })
        {
            rows.Add((remote ? "remote worker (1 process)" : "in-process workers", await MeasureAsync(remote, jobs, slots, rounds, cancellationToken)));
        }

        Console.WriteLine();
        Console.WriteLine($"| mode | slots | jobs per round | jobs/s (median of {rounds}) | rounds |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var (mode, rates) in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {mode} | {slots} | {jobs} | {HubBench.Median(rates):F0} | {string.Join(", ", rates.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))} |"));
        }

        return 0;
    }

    private static async Task<List<double>> MeasureAsync(bool remote, int jobs, int slots, int rounds, CancellationToken ct)
    {
        var connectionString = await HubBench.CreateDatabaseAsync("kiln_bench_rw", ct);
        try
        {
            await using var db = NpgsqlDataSource.Create(connectionString);
            string[] settings = [$"Kiln:Workers:Slots:test={(remote ? 0 : slots)}"];
            await using var server = await HubBench.StartServerAsync(connectionString, settings, ct);
            ChildProcess? worker = null;
            if (remote)
            {
                worker = await HubBench.StartWorkerAsync(server, await HubBench.CreateWorkerTokenAsync(server, ct), "throughput", slots, ct);
            }

            try
            {
                var rates = new List<double>();
                var parameters = new JsonObject { ["durationMs"] = 0, ["steps"] = 1 };
                for (var round = 0; round <= rounds; round++)
                {
                    var ids = await HubBench.InsertHeldJobsAsync(db, round == 0 ? Math.Min(500, jobs) : jobs, parameters, ct);
                    var watch = Stopwatch.StartNew();
                    await HubBench.ReleaseAsync(db, ids, ct);
                    while (await HubBench.CountUnfinishedAsync(db, ct) > 0)
                    {
                        if (watch.Elapsed > TimeSpan.FromMinutes(5))
                        {
                            throw new TimeoutException("Jobs did not complete in 5 minutes.\n" + worker?.Output);
                        }

                        await Task.Delay(20, ct);
                    }

                    // Round 0 warms up (JIT, connection pools, prepared statements) and is not counted.
                    if (round > 0)
                    {
                        rates.Add(ids.Length / watch.Elapsed.TotalSeconds);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(remote ? "remote" : "in-process")} round {round}: {ids.Length} jobs in {watch.Elapsed.TotalSeconds:F2} s = {rates[^1]:F0} jobs/s"));
                    }
                }

                return rates;
            }
            finally
            {
                if (worker is not null)
                {
                    await worker.DisposeAsync();
                }
            }
        }
        finally
        {
            await HubBench.DropDatabaseAsync(connectionString);
        }
    }
}
