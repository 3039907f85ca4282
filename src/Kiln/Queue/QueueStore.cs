using Kiln.Jobs;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Queue;

internal sealed record QueueStats(
    string Name,
    bool Paused,
    int Concurrency,
    int RateMax,
    int RatePeriodMs,
    int KeepCompleted,
    int KeepFailed,
    long Waiting,
    long Active,
    long Completed,
    long Failed,
    long Delayed,
    long PausedJobs,
    long WaitingChildren,
    long Cancelled);

internal sealed record QueueSettings(int? Concurrency, int? RateMax, int? RatePeriodMs, int? KeepCompleted, int? KeepFailed);

/// <summary>Queue rows: statistics, pause/resume, limits, and bulk operations on a queue's jobs.</summary>
internal sealed class QueueStore(NpgsqlDataSource dataSource, TimeProvider time)
{
    public async Task<List<QueueStats>> StatsAsync(string? name, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select q.name, q.paused, q.concurrency, q.rate_max, q.rate_period_ms, q.keep_completed, q.keep_failed,
                count(*) filter (where j.state = 'queued' and j.run_at <= @now),
                count(*) filter (where j.state = 'running'),
                count(*) filter (where j.state = 'completed'),
                count(*) filter (where j.state = 'failed'),
                count(*) filter (where j.state = 'queued' and j.run_at > @now),
                count(*) filter (where j.state = 'paused'),
                count(*) filter (where j.state = 'waiting'),
                count(*) filter (where j.state = 'cancelled')
            from queues q left join jobs j on j.queue = q.name
            where @name::text is null or q.name = @name
            group by q.name order by q.name
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("name", NpgsqlDbType.Text) { TypedValue = name });
        JobStates.AddNow(cmd, time);
        var list = new List<QueueStats>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            list.Add(new QueueStats(
                r.GetString(0), r.GetBoolean(1), r.GetInt32(2), r.GetInt32(3), r.GetInt32(4), r.GetInt32(5), r.GetInt32(6),
                r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11), r.GetInt64(12), r.GetInt64(13), r.GetInt64(14)));
        }

        return list;
    }

    /// <summary>Sets the paused flag; returns false when there is no such queue. Resuming wakes the queue's workers.</summary>
    public async Task<bool> SetPausedAsync(string name, bool paused, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            with q as (update queues set paused = @paused where name = @name returning name)
            select pg_notify('kiln_jobs', name) from q
            """);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("paused", paused);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken);
    }

    /// <summary>Changes limits and retention; a new rate limit starts with a fresh window at the next lease.</summary>
    public async Task<bool> UpdateAsync(string name, QueueSettings settings, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            with q as (
                update queues set
                    concurrency = coalesce(@concurrency, concurrency), rate_max = coalesce(@rate_max, rate_max),
                    rate_period_ms = coalesce(@rate_period_ms, rate_period_ms), keep_completed = coalesce(@keep_completed, keep_completed),
                    rate_window_start = case when @rate_max is null and @rate_period_ms is null then rate_window_start else 'epoch' end,
                    rate_count = case when @rate_max is null and @rate_period_ms is null then rate_count else 0 end,
                    keep_failed = coalesce(@keep_failed, keep_failed)
                where name = @name returning name)
            select pg_notify('kiln_jobs', name) from q
            """);
        cmd.Parameters.AddWithValue("name", name);
        AddInt(cmd, "concurrency", settings.Concurrency);
        AddInt(cmd, "rate_max", settings.RateMax);
        AddInt(cmd, "rate_period_ms", settings.RatePeriodMs);
        AddInt(cmd, "keep_completed", settings.KeepCompleted);
        AddInt(cmd, "keep_failed", settings.KeepFailed);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken);
    }

    /// <summary>Creates the queue when missing, with the given settings applied on top of defaults.</summary>
    public async Task EnsureAsync(string name, int keepCompleted, int keepFailed, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            insert into queues (name, keep_completed, keep_failed) values (@name, @kc, @kf) on conflict (name) do nothing
            """);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("kc", keepCompleted);
        cmd.Parameters.AddWithValue("kf", keepFailed);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Puts every failed job of the queue back in it; returns how many.</summary>
    public async Task<int> RetryFailedAsync(string name, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand(JobStates.RetryFailedOfQueue);
        JobStates.AddNow(cmd, time);
        cmd.Parameters.AddWithValue("name", name);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        return (int)r.GetInt64(0);
    }

    /// <summary>Deletes the queue's finished jobs in the given state older than the grace period; returns how many.</summary>
    public async Task<int> CleanAsync(string name, string state, TimeSpan olderThan, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            delete from jobs where queue = @name and state = @state and finished_at < @now - @grace
            """);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("state", state);
        cmd.Parameters.AddWithValue("grace", olderThan);
        JobStates.AddNow(cmd, time);
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void AddInt(NpgsqlCommand cmd, string name, int? value) =>
        cmd.Parameters.Add(new NpgsqlParameter<int?>(name, NpgsqlDbType.Integer) { TypedValue = value });
}
