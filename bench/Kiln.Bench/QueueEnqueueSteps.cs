using System.Diagnostics;
using System.Globalization;
using Kiln.Data;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Bench;

/// <summary>
/// Where one enqueue's time goes, client side included (issue 14): each step of <see cref="JobStore.EnqueueAsync(IReadOnlyList{NewJob}, CancellationToken)"/>
/// timed alone, one at a time on the bench host's own pool, with the process CPU and managed allocations per call.
/// Jobs go to a queue no loop serves, so no lease or completion runs beside the steps. The flush is what the durable
/// enqueue costs over the same enqueue on a session with <c>synchronous_commit=off</c> (its commit takes the session's setting).
/// </summary>
internal static class QueueEnqueueSteps
{
    private const string Queue = "steps";

    public static async Task<string> RunAsync(IServiceProvider services, string connectionString, int samples, CancellationToken ct)
    {
        var dataSource = services.GetRequiredService<NpgsqlDataSource>();
        var durable = services.GetRequiredService<JobStore>();
        // The same store on sessions whose commits do not wait for the WAL flush: the enqueue minus its fsync.
        var asyncCsb = new NpgsqlConnectionStringBuilder(connectionString) { Options = "-c synchronous_commit=off", MaxPoolSize = 4 };
        await using var asyncSource = DataExtensions.CreateDataSource(asyncCsb.ConnectionString);
        var notFlushed = new JobStore(
            asyncSource, services.GetRequiredService<JobReader>(), services.GetRequiredService<QueueWakeups>(), services.GetRequiredService<IJobEventSink>(),
            services.GetRequiredService<IOptions<QueueOptions>>(), TimeProvider.System);
        // Npgsql resets a pooled connection's session (RESET ALL, UNLISTEN *, DISCARD TEMP …, sent ahead of the next
        // command) unless told not to, as Kiln's pool now is: what the reset cost is the difference between these two
        // round trips. The same auto-prepare settings as Kiln's pool, only with the reset.
        var resetCsb = new NpgsqlConnectionStringBuilder(connectionString)
        {
            NoResetOnClose = false,
            MaxPoolSize = 4,
            MaxAutoPrepare = 64,
            AutoPrepareMinUsages = 2,
        };
        await using var resetSource = new NpgsqlDataSourceBuilder(resetCsb.ConnectionString).Build();
        var now = DateTimeOffset.UtcNow;

        var steps = new List<Step>
        {
            await MeasureAsync("pool: open + close a pooled connection (no command)", samples, async () =>
            {
                await using var conn = await dataSource.OpenConnectionAsync(ct);
            }),
            await MeasureAsync("round trip: open, select 1, close (Kiln's pool: No Reset On Close)", samples, async () =>
            {
                await using var conn = await dataSource.OpenConnectionAsync(ct);
                await using var cmd = new NpgsqlCommand("select 1", conn);
                await cmd.ExecuteScalarAsync(ct);
            }),
            await MeasureAsync("round trip with Npgsql's session reset (the pool before)", samples, async () =>
            {
                await using var conn = await resetSource.OpenConnectionAsync(ct);
                await using var cmd = new NpgsqlCommand("select 1", conn);
                await cmd.ExecuteScalarAsync(ct);
            }),
            await MeasureAsync("parameters: one job's 12 arrays bound (client CPU only)", samples * 10, () =>
            {
                var command = new NpgsqlBatchCommand(JobInserts.InsertSql);
                JobInserts.AddParameters(command.Parameters, [NewJob()], now);
                return Task.CompletedTask;
            }),
            await MeasureAsync("enqueue, commit not flushed (synchronous_commit=off session)", samples, () => notFlushed.EnqueueAsync([NewJob()], ct)),
            await MeasureAsync("enqueue, durable (JobStore.EnqueueAsync as the API calls it)", samples, () => durable.EnqueueAsync([NewJob()], ct)),
        };

        var lines = steps.Select(s => s.ToString()).ToList();
        var flush = steps[^1].P50 - steps[^2].P50;
        lines.Add(string.Create(CultureInfo.InvariantCulture, $"  => the WAL flush (durable minus not flushed, p50): {flush:F3} ms"));
        return "enqueue steps, one at a time:\n" + string.Join('\n', lines);
    }

    /// <summary>
    /// The durable enqueue with <paramref name="backlog"/> jobs queued that the planner's statistics do not know of:
    /// taken (autovacuum off for the table meanwhile) when the queued jobs were only the earlier steps', as after a
    /// burst of uploads before autoanalyze. A vacuum after the burst marks the pages all-visible, as autovacuum would.
    /// The enqueue's generic-plan statements must still find their rows by key (docs/benchmarks.md, "The NOTIFY that
    /// read the backlog").
    /// </summary>
    public static async Task<string> BacklogAsync(IServiceProvider services, int backlog, int samples, CancellationToken ct)
    {
        var dataSource = services.GetRequiredService<NpgsqlDataSource>();
        var store = services.GetRequiredService<JobStore>();
        async Task Sql(string sql)
        {
            await using var cmd = dataSource.CreateCommand(sql);
            await cmd.ExecuteNonQueryAsync(ct);
        }

        await Sql("alter table jobs set (autovacuum_enabled = false)");
        try
        {
            await Sql("vacuum analyze jobs");
            var before = await MeasureAsync("enqueue, durable, statistics just taken", samples, () => store.EnqueueAsync([NewJob()], ct));
            for (var left = backlog; left > 0; left -= 5000)
            {
                await store.EnqueueAsync([.. Enumerable.Range(0, Math.Min(5000, left)).Select(_ => NewJob())], ct);
            }

            await Sql("vacuum jobs");
            var after = await MeasureAsync($"enqueue, durable, {backlog} more jobs queued since", samples, () => store.EnqueueAsync([NewJob()], ct));
            return $"enqueue behind a backlog the statistics do not know of, one at a time:\n{before}\n{after}";
        }
        finally
        {
            await Sql("alter table jobs reset (autovacuum_enabled)");
        }
    }

    private static NewJob NewJob() => new() { Kind = BenchJobs.Kind, Queue = Queue, Priority = 10 };

    private static async Task<Step> MeasureAsync(string name, int samples, Func<Task> step)
    {
        for (var i = 0; i < Math.Min(200, samples); i++)
        {
            await step();
        }

        var ms = new double[samples];
        var cpu = BenchJobs.ProcessCpuSeconds();
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < samples; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await step();
            ms[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        var bytes = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)samples;
        return new Step(name, LatencyResult.Percentile(ms, 0.5), LatencyResult.Percentile(ms, 0.99), (BenchJobs.ProcessCpuSeconds() - cpu) * 1e6 / samples, bytes);
    }

    private sealed record Step(string Name, double P50, double P99, double CpuUs, double Bytes)
    {
        public override string ToString() => string.Create(CultureInfo.InvariantCulture,
            $"  {Name}: p50 {P50:F3} ms, p99 {P99:F3} ms; Kiln CPU {CpuUs:F0} us, {Bytes:F0} B allocated per call");
    }
}
