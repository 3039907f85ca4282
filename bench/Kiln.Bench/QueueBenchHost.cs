using System.Diagnostics;
using Kiln.Core;
using Kiln.Hosting;
using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Queue;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kiln.Bench;

/// <summary>A Kiln serving only the bench queue, on a database of its own that is dropped afterwards.</summary>
internal sealed class QueueBenchHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly string _adminConnectionString;
    private readonly string _database;
    private readonly string _dataDirectory;
    private readonly BenchProbe _probe;
    private string? _postmasterPidFile;

    private QueueBenchHost(WebApplication app, string connectionString, string adminConnectionString, string database, string dataDirectory, BenchProbe probe)
    {
        _app = app;
        ConnectionString = connectionString;
        _adminConnectionString = adminConnectionString;
        _database = database;
        _dataDirectory = dataDirectory;
        _probe = probe;
    }

    /// <summary>The host's own database.</summary>
    public string ConnectionString { get; }

    public IServiceProvider Services => _app.Services;

    private JobStore Jobs => _app.Services.GetRequiredService<JobStore>();

    /// <param name="settings">More configuration, as <c>--Key=value</c> arguments (e.g. <c>--Kiln:Queue:DurableLeases=true</c>).</param>
    public static async Task<QueueBenchHost> StartAsync(
        string connectionString, int slots, string? postmasterPidFile, CancellationToken ct, IReadOnlyList<string>? settings = null)
    {
        var database = "kiln_bench_" + Guid.NewGuid().ToString("N")[..12];
        var csb = new NpgsqlConnectionStringBuilder(connectionString) { Database = database, MaxPoolSize = 50 };
        var admin = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false }.ConnectionString;
        var data = Directory.CreateTempSubdirectory("kiln-bench-").FullName;
        var probe = new BenchProbe();
        var app = KilnApp.Build(
            [
                "--urls=http://127.0.0.1:0",
                $"--ConnectionStrings:Kiln={csb.ConnectionString}",
                $"--Kiln:DataDirectory={data}",
                "--Logging:LogLevel:Default=Warning",
                "--Kiln:Security:CreateAdminKeyOnFirstStart=false",
                "--Kiln:Workers:Slots:default=0",
                "--Kiln:Workers:Slots:image=0",
                "--Kiln:Workers:Slots:video=0",
                "--Kiln:Workers:Slots:audio=0",
                $"--Kiln:Workers:Slots:{BenchJobs.Queue}={slots}",
                .. settings ?? [],
            ],
            b =>
            {
                b.Services.AddSingleton(probe);
                b.Services.AddSingleton<IJobEventListener>(probe);
                b.Services.AddJobKind<NoopHandler>(new JobKindInfo(BenchJobs.Kind, BenchJobs.Queue, 10));
            });
        await KilnApp.PrepareAsync(app, ct);
        await app.StartAsync(ct);
        await app.Services.GetRequiredService<QueueNotifier>().Listening.WaitAsync(ct);
        return new QueueBenchHost(app, csb.ConnectionString, admin, database, data, probe) { _postmasterPidFile = postmasterPidFile };
    }

    public static async Task<(string Version, string Fsync, string SynchronousCommit, string FullPageWrites)> DurabilityAsync(string connectionString, CancellationToken ct)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false };
        await using var conn = new NpgsqlConnection(csb.ConnectionString);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(
            "select current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')", conn);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3));
    }

    public async Task<ThroughputResult> ThroughputAsync(int jobs, int chunk, CancellationToken ct)
    {
        var dataSource = _app.Services.GetRequiredService<NpgsqlDataSource>();
        var chunks = Enumerable.Range(0, (jobs + chunk - 1) / chunk).Select(i => BenchJobs.Chunk(Math.Min(chunk, jobs - (i * chunk)))).ToList();
        var done = _probe.ExpectCompletions(jobs);
        var wal = await BenchJobs.WalLsnAsync(dataSource, ct);
        var cpu = BenchJobs.ProcessCpuSeconds();
        var machine = BenchJobs.MachineCpuSeconds();
        var postgres = BenchJobs.PostgresCpuSeconds(_postmasterPidFile);
        var allocated = GC.GetTotalAllocatedBytes();

        var start = Stopwatch.GetTimestamp();
        foreach (var list in chunks)
        {
            await Jobs.EnqueueAsync(list, ct);
        }

        var enqueued = Stopwatch.GetTimestamp();
        var end = await done.WaitAsync(TimeSpan.FromMinutes(10), ct);

        return new ThroughputResult(
            jobs,
            Stopwatch.GetElapsedTime(start, end).TotalSeconds,
            Stopwatch.GetElapsedTime(start, enqueued).TotalSeconds,
            BenchJobs.ProcessCpuSeconds() - cpu,
            BenchJobs.MachineCpuSeconds() - machine,
            BenchJobs.PostgresCpuSeconds(_postmasterPidFile) - postgres,
            await BenchJobs.WalLsnAsync(dataSource, ct) - wal,
            GC.GetTotalAllocatedBytes() - allocated);
    }

    public async Task<LatencyResult> LatencyAsync(int samples, int warmup, CancellationToken ct)
    {
        var enqueueMs = new double[samples];
        var startMs = new double[samples];
        var cpu = 0.0;
        var postgres = (double?)0;
        var transactions = 0L;
        var dataSource = _app.Services.GetRequiredService<NpgsqlDataSource>();

        // Unmeasured jobs first: connections opened, statements prepared, code jitted. Tiered compilation promotes a
        // method after 30 calls and then compiles it in the background: with only 50 jobs first, that background JIT
        // (seconds of CPU) was counted as the queue's CPU per job.
        for (var i = -warmup; i < samples; i++)
        {
            var job = new NewJob { Kind = BenchJobs.Kind, Queue = BenchJobs.Queue };
            var started = _probe.ExpectStart(job.Id);
            var completed = _probe.ExpectCompletions(1);
            var before = Stopwatch.GetTimestamp();
            await Jobs.EnqueueAsync([job], ct);
            var afterEnqueue = Stopwatch.GetTimestamp();
            var startedAt = await started.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await completed.WaitAsync(TimeSpan.FromSeconds(30), ct);
            if (i == 0)
            {
                // Backends report their transaction counts at most once a second (PostgreSQL 15): let the warm-up's land.
                await Task.Delay(TimeSpan.FromSeconds(1.5), ct);
                transactions = await TransactionsAsync(dataSource, ct);
                cpu = BenchJobs.ProcessCpuSeconds();
                postgres = BenchJobs.PostgresCpuSeconds(_postmasterPidFile);
            }

            if (i >= 0)
            {
                enqueueMs[i] = Stopwatch.GetElapsedTime(before, afterEnqueue).TotalMilliseconds;
                startMs[i] = Stopwatch.GetElapsedTime(before, startedAt).TotalMilliseconds;
            }
        }

        var cpuUs = (BenchJobs.ProcessCpuSeconds() - cpu) * 1e6 / samples;
        var postgresUs = (BenchJobs.PostgresCpuSeconds(_postmasterPidFile) - postgres) * 1e6 / samples;
        await Task.Delay(TimeSpan.FromSeconds(1.5), ct);
        return new LatencyResult(samples, enqueueMs, startMs)
        {
            CpuUsPerJob = cpuUs,
            PostgresCpuUsPerJob = postgresUs,
            TransactionsPerJob = (await TransactionsAsync(dataSource, ct) - transactions) / (double)samples,
        };
    }

    /// <summary>Transactions committed or rolled back in the host's database so far (each enqueue, lease, completion …).</summary>
    private static async Task<long> TransactionsAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select xact_commit + xact_rollback from pg_stat_database where datname = current_database()");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using (var conn = new NpgsqlConnection(_adminConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"drop database if exists {_database} with (force)", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        Directory.Delete(_dataDirectory, recursive: true);
    }
}

/// <summary>Signals handler starts (latency) and counts completions as the queue announces them after commit.</summary>
internal sealed class BenchProbe : IJobEventListener
{
    private TaskCompletionSource<long> _completions = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<long>? _start;
    private Guid _startJob;
    private int _left = int.MaxValue;

    public Task<long> ExpectCompletions(int count)
    {
        _completions = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _left, count);
        return _completions.Task;
    }

    public Task<long> ExpectStart(Guid jobId)
    {
        _startJob = jobId;
        _start = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        return _start.Task;
    }

    public void Started(Guid jobId)
    {
        if (jobId == _startJob)
        {
            _start?.TrySetResult(Stopwatch.GetTimestamp());
        }
    }

    public void OnJobEvent(JobEvent jobEvent)
    {
        if (jobEvent.Type == JobEventType.Completed && Interlocked.Decrement(ref _left) == 0)
        {
            _completions.TrySetResult(Stopwatch.GetTimestamp());
        }
    }
}

/// <summary>Does nothing: what is measured is the queue.</summary>
internal sealed class NoopHandler(BenchProbe probe) : IJobHandler
{
    public string Kind => BenchJobs.Kind;

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        probe.Started(context.JobId);
        return Task.FromResult(JobOutcome.Empty);
    }
}
