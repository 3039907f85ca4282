using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
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
    IOptions<QueueOptions> options,
    TimeProvider time,
    ILeaseAtEnqueue? leaseAtEnqueue = null,
    ILogger<JobStore>? logger = null)
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
    /// The interactive path, in one round trip: the queue rows, the insert and the NOTIFY as one implicit transaction
    /// with a durable commit; and when an idle local loop waits on a job's queue, its lease in a second transaction
    /// behind an error barrier (a Sync), which PostgreSQL runs right after the first one committed, with the NOTIFY
    /// after it. The jobs' commit waits for its WAL flush; the lease's does not (no lease does by default,
    /// <see cref="QueueOptions.DurableLeases"/>). One job is inserted with scalar values, which PostgreSQL plans in
    /// microseconds, so its transaction needs no settings statement. For one job the call returns as soon as the job is
    /// durable, and the lease is read and started after (docs/queue.md, "Enqueue"; docs/benchmarks.md, "The enqueue
    /// call").
    /// </summary>
    private async Task<EnqueuedJobs> EnqueueInOneRoundTripAsync(IReadOnlyList<NewJob> jobs, CancellationToken ct)
    {
        if (jobs.Count == 0)
        {
            return new EnqueuedJobs([]);
        }

        var missing = MissingQueues(jobs);
        var round = new EnqueueRoundTrip(await dataSource.OpenConnectionAsync(ct));
        var detached = false;
        try
        {
            var many = AddJobs(round.Batch, jobs, missing, out var now);
            if (leaseAtEnqueue is not null)
            {
                AddLeases(round, jobs, now);
            }

            round.Batch.BatchCommands.Add(Notify(jobs, many || round.Leases.Count > 0));
            var enqueued = new EnqueuedJobs(await round.ReadJobsAsync(jobs.Count, many, ct));
            if (!many && round.Leases.Count > 0)
            {
                // PostgreSQL sends an extended-protocol batch's results when a Sync ends its transaction (or its 8 kB
                // output buffer fills, which one job's row cannot): that the job's row arrived means its commit, and
                // the WAL flush the commit waited for, came first. The job is durable; its lease is read after.
                Remember(missing);
                Publish(enqueued);
                detached = true;
                _ = FinishLeasesAsync(round, enqueued);
                return enqueued;
            }

            var drained = await round.ReadLeasesAsync();
            await round.ReadToEndAsync();
            // Only a durable queue row may be skipped from now on.
            Remember(missing);
            // Announced before the leased jobs start, so that "queued" never comes after "running". A queue whose idle
            // loop's lease took all its ready jobs is not woken: the loop would lease again for nothing.
            Wake(enqueued, drained);
            Publish(enqueued);
            await round.StartLeasesAsync();
            return enqueued;
        }
        finally
        {
            if (!detached)
            {
                await round.DisposeAsync();
            }
        }
    }

    /// <summary>Adds the jobs' transaction to the batch; true when it inserts several jobs (or one with a parent).</summary>
    private bool AddJobs(NpgsqlBatch batch, IReadOnlyList<NewJob> jobs, string[] missing, out DateTimeOffset now)
    {
        var many = !JobInserts.IsOne(jobs);
        if (many)
        {
            // PostgreSQL keeps planning the unnest insert afresh for every call (its custom plans never look costly
            // enough to give up), and planning it costs more than running it: ~0.6 ms against ~0.4 ms measured
            // (docs/benchmarks.md, "Queue latency"). The settings end with this implicit transaction.
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"select {JobStates.GenericPlan}, {JobStates.KeyedLookups}"));
        }

        if (missing.Length > 0)
        {
            var ensure = new NpgsqlBatchCommand(EnsureQueuesSql);
            AddEnsureParameters(ensure.Parameters, missing);
            batch.BatchCommands.Add(ensure);
        }

        now = time.GetUtcNow();
        var insert = new NpgsqlBatchCommand(many ? JobInserts.InsertSql : JobInserts.InsertOneSql);
        if (many)
        {
            JobInserts.AddParameters(insert.Parameters, jobs, now);
        }
        else
        {
            JobInserts.AddOneParameters(insert.Parameters, jobs[0], now);
        }

        batch.BatchCommands.Add(insert);
        return many;
    }

    /// <summary>The lease transaction's own settings: its commit does not wait for the flush.</summary>
    private const string LeaseSettingsSql = $"select {JobStates.GenericPlan}, {JobStates.AsyncCommit}, {JobStates.KeyedLookups}";

    /// <summary>
    /// An idle local loop's lease for each queue that got a ready job, after an error barrier that ends the jobs'
    /// transaction: the job can start right after this round trip, not after one more. Each lease leases only if a
    /// job of the insert exists, so one after a failed insert leases nothing.
    /// </summary>
    private void AddLeases(EnqueueRoundTrip round, IReadOnlyList<NewJob> jobs, DateTimeOffset now)
    {
        var batch = round.Batch;
        var leasesStart = batch.BatchCommands.Count;
        foreach (var job in jobs.Where(j => j.ParentId is null && (j.RunAt is null || j.RunAt <= now)).DistinctBy(j => j.Queue, StringComparer.Ordinal))
        {
            if (leaseAtEnqueue!.TryAdd(batch, job.Queue, job.Id) is { } lease)
            {
                round.Leases.Add(lease);
            }
        }

        if (round.Leases.Count > 0)
        {
            // The jobs' transaction ends before the leases', and the leases' before the NOTIFY's: PostgreSQL sends
            // the leases' results at their Sync, before it runs the NOTIFY. The leases' settings open their transaction.
            batch.BatchCommands[leasesStart - 1].AppendErrorBarrier = true;
            batch.BatchCommands[^1].AppendErrorBarrier = true;
            batch.BatchCommands.Insert(leasesStart, new NpgsqlBatchCommand(LeaseSettingsSql));
        }
    }

    /// <summary>
    /// After a one-job call returned: reads its lease, wakes the loops whose queues it did not drain, and starts
    /// what it leased. Should the read fail, the loops are woken to lease the job themselves.
    /// </summary>
    private async Task FinishLeasesAsync(EnqueueRoundTrip round, EnqueuedJobs enqueued)
    {
        // Off the caller's thread at once: when the lease's results are already in, reading them and starting the job
        // would otherwise run before the call returns.
        await Task.Yield();
        await using (round)
        {
            string[]? drained = null;
            try
            {
                drained = await round.ReadLeasesAsync();
                Wake(enqueued, drained);
                await round.StartLeasesAsync();
                // The NOTIFY after the lease, for other nodes.
                await round.ReadToEndAsync();
            }
            catch (Exception e)
            {
                // Nothing awaits this continuation, so it logs; without the lease's results the loops lease by themselves.
                logger?.LogWarning(e, "Finishing the lease that rode along with an enqueue failed");
                if (drained is null)
                {
                    Wake(enqueued, null);
                }
            }
        }
    }

    /// <summary>
    /// The NOTIFY of the queues that got a ready job. One job without a parent, with no lease before the NOTIFY, is
    /// queued for sure, and its queue is notified without a lookup (and without the planning a lookup would need).
    /// </summary>
    private NpgsqlBatchCommand Notify(IReadOnlyList<NewJob> jobs, bool lookUp)
    {
        if (!lookUp)
        {
            var one = new NpgsqlBatchCommand("select pg_notify('kiln_jobs', @payload)");
            one.Parameters.AddWithValue("payload", jobs[0].Queue + wakeups.NotifySuffix);
            return one;
        }

        var notify = new NpgsqlBatchCommand(NotifyQueuedSql);
        notify.Parameters.AddWithValue("ids", jobs.Select(j => j.Id).ToArray());
        notify.Parameters.AddWithValue("sender", wakeups.NotifySuffix);
        return notify;
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
    public void Announce(EnqueuedJobs enqueued)
    {
        Wake(enqueued, null);
        Publish(enqueued);
    }

    /// <summary>Wakes the local loops of the queues that got a ready job, but those a lease on enqueue drained.</summary>
    private void Wake(EnqueuedJobs enqueued, string[]? drained)
    {
        foreach (var queue in enqueued.Jobs.Where(i => i.State == JobState.Queued).Select(i => i.Queue).Distinct(StringComparer.Ordinal))
        {
            if (drained is null || !drained.Contains(queue, StringComparer.Ordinal))
            {
                wakeups.Wake(queue);
            }
        }
    }

    private void Publish(EnqueuedJobs enqueued)
    {
        // Bulk enqueues (benchmarks, batches) would flood listeners; one event per job is for interactive sizes.
        if (enqueued.Jobs.Count <= 1000)
        {
            foreach (var job in enqueued.Jobs)
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
