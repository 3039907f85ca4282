using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Jobs;

/// <summary>Enqueues jobs (reads: <see cref="JobReader"/>). State changes asked for through the API live in <see cref="JobCommands"/>.</summary>
internal sealed class JobStore(
    NpgsqlDataSource dataSource,
    JobReader reader,
    QueueWakeups wakeups,
    IJobEventSink events,
    WalFlush walFlush,
    IOptions<QueueOptions> options,
    TimeProvider time,
    ILeaseAtEnqueue? leaseAtEnqueue = null)
{
    private readonly ConcurrentDictionary<string, bool> _knownQueues = new(StringComparer.Ordinal);

    public async Task<EnqueuedJobs> EnqueueAsync(IReadOnlyList<NewJob> jobs, CancellationToken cancellationToken)
    {
        if (!JobInserts.UseCopy(jobs))
        {
            return await EnqueueInOneRoundTripAsync(jobs, cancellationToken);
        }

        var enqueued = await EnqueueAsync(jobs, null, null, cancellationToken);
        Announce(enqueued);
        return enqueued;
    }

    /// <summary>
    /// Inserts jobs (a parent may come in the same list, before its children) and notifies their queues. With a
    /// caller's transaction, the caller must call <see cref="Announce"/> after it commits.
    /// </summary>
    public async Task<EnqueuedJobs> EnqueueAsync(
        IReadOnlyList<NewJob> jobs, NpgsqlConnection? connection, NpgsqlTransaction? transaction, CancellationToken cancellationToken)
    {
        if (jobs.Count == 0)
        {
            return new EnqueuedJobs([]);
        }

        var ownConnection = connection is null;
        var conn = connection ?? await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            await using var ownTx = ownConnection ? await conn.BeginTransactionAsync(cancellationToken) : null;
            var tx = transaction ?? ownTx;
            var missing = MissingQueues(jobs);
            if (missing.Length > 0)
            {
                await using var ensure = new NpgsqlCommand(EnsureQueuesSql, conn, tx);
                AddEnsureParameters(ensure.Parameters, missing);
                await ensure.ExecuteNonQueryAsync(cancellationToken);
            }

            List<EnqueuedJob> inserted;
            if (JobInserts.UseCopy(jobs))
            {
                inserted = await JobInserts.CopyAsync(conn, jobs, time.GetUtcNow(), cancellationToken);
            }
            else
            {
                await using var cmd = new NpgsqlCommand(JobInserts.InsertSql, conn, tx);
                JobInserts.AddParameters(cmd.Parameters, jobs, time.GetUtcNow());
                await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                inserted = await JobInserts.ReadAsync(r, jobs.Count, cancellationToken);
            }

            await JobRows.NotifyQueuesAsync(conn, tx, inserted.Where(i => i.State == JobState.Queued).Select(i => i.Queue), wakeups, cancellationToken);
            if (ownTx is not null)
            {
                await ownTx.CommitAsync(cancellationToken);
                Remember(missing);
            }

            return new EnqueuedJobs(inserted);
        }
        finally
        {
            if (ownConnection)
            {
                await conn.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The interactive path: queue rows, insert and NOTIFY in one batch, then the flush, all in one round trip.
    /// Without an explicit transaction PostgreSQL runs the statements up to a Sync as one implicit transaction, so
    /// the jobs' part is atomic and has one commit. That commit does not wait for its WAL flush, and an error barrier
    /// (a Sync) after the NOTIFY sends its results at once: the jobs are visible and this node's loops are woken, so a
    /// job can start while the flush is under way. The batch's last statement, in a transaction of its own, waits
    /// for a flush covering that commit (<see cref="WalFlush"/>), and only then does the call return. A crash in
    /// between loses jobs whose caller was never told they were enqueued (docs/queue.md, "Guarantees"). It was two
    /// round trips until the flush moved into the batch: one durable enqueue took 0.4–0.6 ms less, at ~10 % less
    /// client CPU (docs/benchmarks.md, "The flush in the enqueue's round trip").
    /// </summary>
    private async Task<EnqueuedJobs> EnqueueInOneRoundTripAsync(IReadOnlyList<NewJob> jobs, CancellationToken ct)
    {
        if (jobs.Count == 0)
        {
            return new EnqueuedJobs([]);
        }

        var missing = MissingQueues(jobs);
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var batch = new NpgsqlBatch(conn);
        // PostgreSQL keeps planning the insert afresh for every call (its custom plans never look costly enough to
        // give up), and planning it costs more than running it: ~0.6 ms against ~0.4 ms measured, ten times what the
        // generic plan's check costs (docs/benchmarks.md, "Queue latency"). The setting ends with this implicit
        // transaction.
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            $"select {JobStates.GenericPlan}, {JobStates.AsyncCommit}, {JobStates.KeyedLookups}"));
        if (missing.Length > 0)
        {
            var ensure = new NpgsqlBatchCommand(EnsureQueuesSql);
            AddEnsureParameters(ensure.Parameters, missing);
            batch.BatchCommands.Add(ensure);
        }

        var insert = new NpgsqlBatchCommand(JobInserts.InsertSql);
        var now = time.GetUtcNow();
        JobInserts.AddParameters(insert.Parameters, jobs, now);
        batch.BatchCommands.Add(insert);
        // An idle local loop's lease rides along (after the insert, before the NOTIFY, which then names only the
        // queues still holding ready jobs): the job can start right after this round trip, not after one more.
        var leases = new List<IEnqueueLease>();
        try
        {
            foreach (var queue in jobs.Where(j => j.ParentId is null && (j.RunAt is null || j.RunAt <= now)).Select(j => j.Queue).Distinct(StringComparer.Ordinal))
            {
                if (leaseAtEnqueue?.TryAdd(batch, queue) is { } lease)
                {
                    leases.Add(lease);
                }
            }

            return await RunEnqueueBatchAsync(conn, batch, jobs, missing, leases, ct);
        }
        finally
        {
            foreach (var lease in leases)
            {
                lease.Dispose();
            }
        }
    }

    /// <summary>
    /// NOTIFYs the queues of the batch's jobs still queued after the lease that may ride along. The batch runs on the
    /// generic plan, and a generic plan for <c>where id = any(@ids) and state = 'queued'</c> may read the whole
    /// partial index of queued jobs (jobs_dequeue, which ends in id) instead of probing the primary key: it did
    /// whenever the statistics said few jobs were queued and many were, after a burst of enqueues or before a vacuum,
    /// and every enqueue then paid for a scan of the backlog (1.1 ms at 5,000 queued jobs, 2.5–4.8 ms at 26,000;
    /// docs/benchmarks.md, "The NOTIFY that read the backlog"). The materialized CTE finds the jobs by id alone, and
    /// the state is tested on what it found, where no partial index can be chosen for it.
    /// </summary>
    internal const string NotifyQueuedSql = """
        with mine as materialized (select queue, state from jobs where id = any(@ids))
        select pg_notify('kiln_jobs', q || @sender) from (select distinct queue from mine where state = 'queued') d(q)
        """;

    private async Task<EnqueuedJobs> RunEnqueueBatchAsync(
        NpgsqlConnection conn, NpgsqlBatch batch, IReadOnlyList<NewJob> jobs, string[] missing, List<IEnqueueLease> leases, CancellationToken ct)
    {
        var notify = new NpgsqlBatchCommand(NotifyQueuedSql);
        notify.Parameters.AddWithValue("ids", jobs.Select(j => j.Id).ToArray());
        notify.Parameters.AddWithValue("sender", wakeups.NotifySuffix);
        batch.BatchCommands.Add(notify);
        // A Sync after the NOTIFY ends the implicit transaction there: its results reach us at once, while the
        // flush statement after it runs in its own transaction, in the same round trip.
        walFlush.AddTo(batch);

        // The reader starts on the setting's row; it skips the queue insert (no rows) on its way to the job insert.
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.NextResultAsync(ct);
        var inserted = await JobInserts.ReadAsync(r, jobs.Count, ct);
        foreach (var lease in leases)
        {
            await lease.ReadAsync(r, ct);
        }

        var enqueued = new EnqueuedJobs(inserted);
        // Announced before the flush: the jobs are committed and may already be leased, and a lease announces its
        // start, so announcing later could put "queued" after "running". A queue whose idle loop's lease took all
        // its ready jobs is not woken: the loop would lease again for nothing.
        Announce(enqueued, leases.Count == 0 ? null : [.. leases.Where(l => l.Drained).Select(l => l.Queue)]);
        foreach (var lease in leases)
        {
            await lease.StartAsync();
        }

        // The jobs exist now: a cancelled caller would be told they do not, so the flush is waited for regardless.
        await walFlush.WaitAsync(r, CancellationToken.None);
        // Only a durable queue row may be skipped from now on: one lost in a crash before the flush must be written again.
        Remember(missing);
        return enqueued;
    }

    // Reads live in JobReader, which has no event sink: the hub's dispatchers read jobs without a DI loop through
    // JobStore -> IJobEventSink -> listeners -> JobStore. These forward for the endpoints and tests that enqueue and read.
    public Task<Job?> GetAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken) => reader.GetAsync(id, ownerScope, cancellationToken);

    public Task<Job?> GetDetailAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken) => reader.GetDetailAsync(id, ownerScope, cancellationToken);

    public Task<List<Job>> ListForAssetAsync(Guid assetId, CancellationToken cancellationToken) => reader.ListForAssetAsync(null, assetId, cancellationToken);

    public Task<List<Job>> ListForAssetAsync(NpgsqlConnection? conn, Guid assetId, CancellationToken cancellationToken) =>
        reader.ListForAssetAsync(conn, assetId, cancellationToken);

    public Task<long?> QueuePositionAsync(Guid id, CancellationToken cancellationToken) => reader.QueuePositionAsync(id, cancellationToken);

    public int DefaultMaxAttempts => options.Value.DefaultMaxAttempts;

    /// <summary>After the jobs' transaction committed: wakes local loops at once and announces the jobs.</summary>
    public void Announce(EnqueuedJobs enqueued) => Announce(enqueued, null);

    private void Announce(EnqueuedJobs enqueued, string[]? drained)
    {
        var inserted = enqueued.Jobs;
        foreach (var queue in inserted.Where(i => i.State == JobState.Queued).Select(i => i.Queue).Distinct(StringComparer.Ordinal))
        {
            if (drained is null || !drained.Contains(queue, StringComparer.Ordinal))
            {
                wakeups.Wake(queue);
            }
        }

        // Bulk enqueues (benchmarks, batches) would flood listeners; one event per job is for interactive sizes.
        if (inserted.Count <= 1000)
        {
            foreach (var job in inserted)
            {
                events.Publish(job.State == JobState.Queued ? JobEvents.Queued(job.Id, job.OwnerId) : JobEvents.Update(job.Id, job.OwnerId, job.State));
            }
        }
    }

    private const string EnsureQueuesSql = """
        insert into queues (name, keep_completed, keep_failed) select q, @keep_completed, @keep_failed from unnest(@names) as q
        on conflict (name) do nothing
        """;

    /// <summary>Queue names of the jobs not yet known to have a row.</summary>
    private string[] MissingQueues(IReadOnlyList<NewJob> jobs) =>
        [.. jobs.Select(j => j.Queue).Distinct(StringComparer.Ordinal).Where(q => !_knownQueues.ContainsKey(q))];

    private void AddEnsureParameters(NpgsqlParameterCollection parameters, string[] names)
    {
        parameters.AddWithValue("names", names);
        parameters.AddWithValue("keep_completed", options.Value.KeepCompleted);
        parameters.AddWithValue("keep_failed", options.Value.KeepFailed);
    }

    /// <summary>Caches queue names once their rows committed; a caller's transaction may still roll back, so only ours.</summary>
    private void Remember(string[] queues)
    {
        foreach (var queue in queues)
        {
            _knownQueues[queue] = true;
        }
    }

    /// <summary>Forgets cached queue names (a test or an admin deleted rows behind our back).</summary>
    public void ForgetQueues() => _knownQueues.Clear();
}

internal sealed record EnqueuedJob(Guid Id, string State, string Queue, Guid? OwnerId);

internal sealed record EnqueuedJobs(IReadOnlyList<EnqueuedJob> Jobs);
