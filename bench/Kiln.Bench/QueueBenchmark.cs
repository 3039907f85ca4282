using System.Diagnostics;
using System.Globalization;
using Kiln.Jobs;
using Npgsql;

namespace Kiln.Bench;

/// <summary>
/// The PostgreSQL queue end to end, in one process: a real Kiln (in-process workers, no-op handler) on a database
/// that must be durable (fsync and synchronous_commit on; checked, not assumed).
/// <list type="bullet">
/// <item>throughput: bulk enqueue in chunks while the workers run; jobs/s from the first enqueue to the last
/// completion (as announced after its commit), median of several rounds, each on a fresh database;</item>
/// <item>latency: one job at a time on an idle queue, from the enqueue call to the handler starting.</item>
/// </list>
/// <c>queue [--pg CONNSTR] [--jobs 100000] [--rounds 3] [--slots 256] [--chunk 5000] [--samples 2000] [--warmup 30000] [--only throughput|latency]
/// [--pg-pid-file PATH] [--steps] [--backlog N] [--durable-leases] [--latency-warmup 500]</c>. <c>--steps</c> adds the enqueue split into its steps
/// (<see cref="QueueEnqueueSteps"/>); <c>--backlog N</c> the enqueue with N jobs queued behind statistics taken before them; <c>--durable-leases</c> runs the latency with every lease waiting for its flush.
/// The connection string defaults to KILN_BENCH_PG, then /var/tmp/benchpg.connstr; the
/// postmaster.pid (default /var/tmp/benchpg/cluster/postmaster.pid) lets it report PostgreSQL's CPU when local.
/// </summary>
internal sealed class QueueBenchmark : IBenchmark
{
    public string Name => "queue";

    public string Description => "PostgreSQL queue: no-op jobs/s end to end and enqueue-to-start latency (durable)";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var options = BenchArgs.Parse(args);
        var connectionString = options.Get("pg")
            ?? Environment.GetEnvironmentVariable("KILN_BENCH_PG")
            ?? (File.Exists("/var/tmp/benchpg.connstr") ? (await File.ReadAllTextAsync("/var/tmp/benchpg.connstr", cancellationToken)).Trim() : null);
        if (connectionString is null)
        {
            await Console.Error.WriteLineAsync("No PostgreSQL: pass --pg, set KILN_BENCH_PG, or write /var/tmp/benchpg.connstr.");
            return 2;
        }

        var jobs = options.GetInt("jobs", 100_000);
        var rounds = options.GetInt("rounds", 3);
        var slots = options.GetInt("slots", 256);
        var chunk = options.GetInt("chunk", 5000);
        var samples = options.GetInt("samples", 2000);
        var only = options.Get("only");
        var pidFile = options.Get("pg-pid-file") ?? "/var/tmp/benchpg/cluster/postmaster.pid";

        var durability = await QueueBenchHost.DurabilityAsync(connectionString, cancellationToken);
        Console.WriteLine($"PostgreSQL {durability.Version}; fsync={durability.Fsync}, synchronous_commit={durability.SynchronousCommit}, full_page_writes={durability.FullPageWrites}");
        if (durability.Fsync != "on" || durability.SynchronousCommit != "on")
        {
            if (options.Get("allow-nondurable") is null)
            {
                await Console.Error.WriteLineAsync("Refusing to measure a non-durable PostgreSQL (pass --allow-nondurable to do it anyway).");
                return 2;
            }

            Console.WriteLine("WARNING: figures below are NOT durable.");
        }

        Console.WriteLine($"{Environment.ProcessorCount} CPUs; jobs={jobs}, rounds={rounds}, slots={slots}, chunk={chunk}, samples={samples}");
        if (only is null or "throughput")
        {
            // The first jobs of a process pay for JIT compilation and tiering; a server runs long enough not to.
            var warmup = options.GetInt("warmup", 30_000);
            if (warmup > 0)
            {
                await using var host = await QueueBenchHost.StartAsync(connectionString, slots, pidFile, cancellationToken);
                Console.WriteLine($"warm-up: {await host.ThroughputAsync(warmup, chunk, cancellationToken)}");
            }

            using var sampler = options.Get("alloc-profile") is null ? null : new QueueAllocationSampler();
            var results = new List<ThroughputResult>();
            for (var round = 1; round <= rounds; round++)
            {
                await using var host = await QueueBenchHost.StartAsync(connectionString, slots, pidFile, cancellationToken);
                var result = await host.ThroughputAsync(jobs, chunk, cancellationToken);
                results.Add(result);
                Console.WriteLine($"round {round}: {result}");
            }

            foreach (var (type, bytes) in sampler?.Top(25) ?? [])
            {
                Console.WriteLine($"  allocated ~{bytes / (double)(jobs * rounds):F0} B/job  {type}");
            }

            var median = results.OrderBy(r => r.JobsPerSecond).ElementAt(results.Count / 2);
            Console.WriteLine($"throughput median: {median.JobsPerSecond:F0} jobs/s (of {string.Join(", ", results.Select(r => r.JobsPerSecond.ToString("F0", CultureInfo.InvariantCulture)))})");
        }

        if (only is null or "latency")
        {
            string[] settings = options.Get("durable-leases") is null ? [] : ["--Kiln:Queue:DurableLeases=true"];
            await using var host = await QueueBenchHost.StartAsync(connectionString, slots, pidFile, cancellationToken, settings);
            var latency = await host.LatencyAsync(samples, options.GetInt("latency-warmup", 500), cancellationToken);
            Console.WriteLine($"leases {(settings.Length > 0 ? "durable" : "not waiting for their flush (default)")}: {latency}");
            if (options.Get("steps") is not null)
            {
                Console.WriteLine(await QueueEnqueueSteps.RunAsync(host.Services, host.ConnectionString, samples, cancellationToken));
            }

            if (options.GetInt("backlog", 0) is > 0 and var backlog)
            {
                Console.WriteLine(await QueueEnqueueSteps.BacklogAsync(host.Services, backlog, samples, cancellationToken));
            }
        }

        return 0;
    }
}

internal sealed record ThroughputResult(
    int Jobs, double Seconds, double EnqueueSeconds, double ProcessCpuSeconds, double MachineCpuSeconds, double? PostgresCpuSeconds, long WalBytes, long AllocatedBytes)
{
    public double JobsPerSecond => Jobs / Seconds;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Jobs} jobs in {Seconds:F2} s = {JobsPerSecond:F0} jobs/s (enqueue alone {Jobs / EnqueueSeconds:F0} jobs/s); " +
        $"CPU: Kiln {ProcessCpuSeconds:F1} s ({ProcessCpuSeconds * 1e6 / Jobs:F0} us/job), PostgreSQL {PostgresCpuSeconds?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"} s " +
        $"({(PostgresCpuSeconds * 1e6 / Jobs)?.ToString("F0", CultureInfo.InvariantCulture) ?? "?"} us/job), whole machine {MachineCpuSeconds:F1} s of {Seconds * Environment.ProcessorCount:F1}; " +
        $"WAL {WalBytes / (double)Jobs:F0} B/job; allocated {AllocatedBytes / (double)Jobs:F0} B/job");
}

internal sealed record LatencyResult(int Samples, double[] EnqueueMs, double[] StartMs)
{
    public double CpuUsPerJob { get; init; }

    public double? PostgresCpuUsPerJob { get; init; }

    /// <summary>Database transactions per job (enqueue, leases, completion, and any lease that found nothing).</summary>
    public double TransactionsPerJob { get; init; }

    public override string ToString()
    {
        static string Stats(double[] v) => string.Create(CultureInfo.InvariantCulture,
            $"p50 {Percentile(v, 0.50):F2} ms, p90 {Percentile(v, 0.90):F2} ms, p99 {Percentile(v, 0.99):F2} ms, max {v.Max():F2} ms");
        return $"latency over {Samples} jobs, enqueue call to handler start: {Stats(StartMs)}\n" +
               $"  of which the enqueue call (insert + durable commit): {Stats(EnqueueMs)}\n" +
               string.Create(CultureInfo.InvariantCulture,
                   $"  CPU per job (enqueue, lease, completion): Kiln {CpuUsPerJob:F0} us, PostgreSQL {PostgresCpuUsPerJob?.ToString("F0", CultureInfo.InvariantCulture) ?? "?"} us; " +
                   $"{TransactionsPerJob:F1} transactions per job");
    }

    public static double Percentile(double[] values, double p)
    {
        var sorted = values.Order().ToArray();
        var index = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }
}

/// <summary>Minimal <c>--name value</c> parsing.</summary>
internal sealed class BenchArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static BenchArgs Parse(string[] args)
    {
        var parsed = new BenchArgs();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                var name = args[i][2..];
                parsed._values[name] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "true";
            }
        }

        return parsed;
    }

    public string? Get(string name) => _values.GetValueOrDefault(name);

    public int GetInt(string name, int fallback) => _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}

/// <summary>Enqueues the way a producer would: plain <see cref="NewJob"/>s in chunks.</summary>
internal static class BenchJobs
{
    public const string Kind = "bench.noop";
    public const string Queue = "bench";

    public static List<NewJob> Chunk(int count) =>
        [.. Enumerable.Range(0, count).Select(_ => new NewJob { Kind = Kind, Queue = Queue, Priority = 10 })];

    public static async Task<long> WalLsnAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Busy CPU seconds of the whole machine so far (user + nice + system + irq + softirq + steal).</summary>
    public static double MachineCpuSeconds()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        long busy = 0;
        foreach (var i in new[] { 1, 2, 3, 6, 7, 8 })
        {
            busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
        }

        return busy / 100.0;
    }

    /// <summary>
    /// CPU seconds used by the PostgreSQL cluster whose postmaster.pid is given: the postmaster, its live children,
    /// and (through the postmaster's cutime/cstime) children that already exited, such as autovacuum workers.
    /// Null when the file is not readable (a remote server).
    /// </summary>
    public static double? PostgresCpuSeconds(string? postmasterPidFile)
    {
        if (postmasterPidFile is null || !File.Exists(postmasterPidFile))
        {
            return null;
        }

        var postmaster = File.ReadLines(postmasterPidFile).First().Trim();
        var ticks = 0L;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var pid = Path.GetFileName(dir);
            if (!pid.All(char.IsAsciiDigit))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
            }
            catch (IOException)
            {
                continue;
            }

            // Fields after the command name, which is in parentheses and may hold spaces.
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var (parent, utime, stime, cutime, cstime) = (f[1], long.Parse(f[11], CultureInfo.InvariantCulture), long.Parse(f[12], CultureInfo.InvariantCulture),
                long.Parse(f[13], CultureInfo.InvariantCulture), long.Parse(f[14], CultureInfo.InvariantCulture));
            if (pid == postmaster)
            {
                ticks += utime + stime + cutime + cstime;
            }
            else if (parent == postmaster)
            {
                ticks += utime + stime;
            }
        }

        return ticks / 100.0;
    }

    public static double ProcessCpuSeconds()
    {
        using var process = Process.GetCurrentProcess();
        return process.TotalProcessorTime.TotalSeconds;
    }
}
