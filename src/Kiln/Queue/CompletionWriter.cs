using System.Text.Json.Nodes;
using System.Threading.Channels;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Queue;

/// <summary>
/// Marks jobs completed. A job with outputs has its staged directory renamed into place and its derivative rows
/// upserted in the same transaction as the state change, so a crash leaves either the old set or the new one.
/// Jobs without outputs are group-committed: concurrent completions share one statement and one commit, and each
/// caller returns only once its row is durable.
/// </summary>
internal sealed class CompletionWriter : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly LeaseRegistry _leases;
    private readonly BlobStore _blobs;
    private readonly IJobEventSink _events;
    private readonly KilnMetrics _metrics;
    private readonly QueueWakeups _wakeups;
    private readonly ILogger<CompletionWriter> _logger;
    private readonly IJobCompletionHook[] _hooks;
    private readonly TimeProvider _time;
    private readonly Channel<(CompletionReport Report, TaskCompletionSource<bool> Done)> _pending =
        Channel.CreateUnbounded<(CompletionReport, TaskCompletionSource<bool>)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _flusher;

    public CompletionWriter(
        NpgsqlDataSource dataSource,
        LeaseRegistry leases,
        BlobStore blobs,
        IJobEventSink events,
        KilnMetrics metrics,
        QueueWakeups wakeups,
        ILogger<CompletionWriter> logger,
        IEnumerable<IJobCompletionHook> hooks,
        TimeProvider time)
    {
        _time = time;
        _hooks = hooks.ToArray();
        _dataSource = dataSource;
        _leases = leases;
        _blobs = blobs;
        _events = events;
        _metrics = metrics;
        _wakeups = wakeups;
        _logger = logger;
        _flusher = Task.Run(FlushLoopAsync);
    }

    public Task<bool> CompleteAsync(CompletionReport report, CancellationToken cancellationToken)
    {
        if (report.Outputs is { Count: > 0 } || report.AssetMetadata is not null)
        {
            return CompleteWithOutputsAsync(report, cancellationToken);
        }

        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        ObjectDisposedException.ThrowIf(!_pending.Writer.TryWrite((report, done)), this);

        return done.Task.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await _flusher.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task<bool> CompleteWithOutputsAsync(CompletionReport report, CancellationToken ct)
    {
        ValidateOutputs(report);
        _leases.TryGet(report.JobId, report.LeaseId, out var held);
        string? published = null;
        var replaced = new List<string>();
        var hookEvents = new List<JobEvent>();
        try
        {
            await using var conn = await _dataSource.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            Guid? owner, assetId;
            string queue, kind;
            double? seconds;
            await using (var cmd = new NpgsqlCommand(JobStates.CompleteOne, conn, tx))
            {
                cmd.Parameters.AddWithValue("result", NpgsqlDbType.Text, (object?)report.Result?.ToJsonString() ?? DBNull.Value);
                cmd.Parameters.AddWithValue("id", report.JobId);
                cmd.Parameters.AddWithValue("lease_id", report.LeaseId);
                JobStates.AddNow(cmd, _time);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                if (!await r.ReadAsync(ct))
                {
                    return false;
                }

                owner = r.IsDBNull(0) ? null : r.GetGuid(0);
                assetId = r.IsDBNull(1) ? null : r.GetGuid(1);
                (queue, kind) = (r.GetString(2), r.GetString(3));
                seconds = r.IsDBNull(4) ? null : r.GetDouble(4);
            }

            if (report.Outputs is { Count: > 0 } outputs)
            {
                if (assetId is null || report.StagingDirectory is null)
                {
                    throw new InvalidOperationException($"Job {report.JobId} produced outputs but has no asset or staging directory.");
                }

                published = _blobs.PublishDerivatives(report.StagingDirectory, assetId.Value, report.JobId, report.LeaseId);
                replaced = await DerivativeRows.UpsertAsync(conn, tx, _blobs, assetId.Value, report.JobId, published, outputs, ct);
                foreach (var hook in _hooks.Where(h => h.Kind == kind))
                {
                    hookEvents.AddRange(await hook.OnCompletedAsync(
                        new CompletedJob(report.JobId, kind, assetId.Value, owner, _blobs.Resolve(published)), conn, tx, ct));
                }
            }

            if (report.AssetMetadata is not null && assetId is not null)
            {
                await using var meta = new NpgsqlCommand("""
                    update assets set metadata = metadata || @m::jsonb, sha256 = coalesce(@m::jsonb ->> 'sha256', sha256)
                    where id = @id
                    """, conn, tx);
                meta.Parameters.AddWithValue("m", report.AssetMetadata.ToJsonString());
                meta.Parameters.AddWithValue("id", assetId.Value);
                await meta.ExecuteNonQueryAsync(ct);
            }

            var children = await JobStates.ReleaseChildrenAsync(conn, tx, [report.JobId], _time, ct);
            await JobRows.NotifyQueuesAsync(conn, tx, children.Select(c => c.Queue), _wakeups, ct);
            await tx.CommitAsync(ct);
            published = null;

            _leases.Remove(report.JobId, report.LeaseId);
            _metrics.JobFinished(queue, kind, JobState.Completed, seconds);
            _events.Publish(JobEvents.Completed(report.JobId, owner ?? held?.OwnerId, report.Result));
            hookEvents.ForEach(_events.Publish);
            AnnounceChildren(children);
            foreach (var path in replaced)
            {
                _blobs.DeleteQuietly(path, _logger);
            }

            return true;
        }
        finally
        {
            // The transaction did not commit: take the moved outputs away again so nothing half-published remains.
            if (published is not null)
            {
                _blobs.DeleteQuietly(published, _logger);
            }
        }
    }

    private async Task FlushLoopAsync()
    {
        var batch = new List<(CompletionReport Report, TaskCompletionSource<bool> Done)>(1024);
        while (await _pending.Reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < 2000 && _pending.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            try
            {
                var completed = await CompleteManyAsync(batch);
                foreach (var (report, done) in batch)
                {
                    done.TrySetResult(completed.Contains(report.JobId));
                }
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Batched completion of {Count} jobs failed", batch.Count);
                foreach (var (_, done) in batch)
                {
                    done.TrySetException(e);
                }
            }
        }
    }

    private async Task<HashSet<Guid>> CompleteManyAsync(List<(CompletionReport Report, TaskCompletionSource<bool> Done)> batch)
    {
        var reports = batch.Select(b => b.Report).ToList();
        var tids = new List<string>(batch.Count);
        var byTid = new List<CompletionReport>(batch.Count);
        foreach (var report in reports)
        {
            if (_leases.TryGet(report.JobId, report.LeaseId, out var lease) && lease.Tid is { } tid)
            {
                tids.Add(tid);
                byTid.Add(report);
            }
        }

        var completed = new HashSet<Guid>();
        var finished = new List<(Guid Id, Guid? Owner, string Queue, string Kind, double? Seconds)>(batch.Count);
        var children = new List<(Guid Id, Guid? Owner, string Queue)>();
        // One round trip, one implicit transaction: the plan settings, then the update, the children's release and the
        // commit in one statement. Planned afresh each time, the statement's planning cost the throughput run more
        // than running it (as the enqueue's insert did, docs/benchmarks.md); the setting ends with this transaction.
        await using (var conn = await _dataSource.OpenConnectionAsync())
        await using (var sql = new NpgsqlBatch(conn))
        {
            sql.BatchCommands.Add(new NpgsqlBatchCommand($"select {JobStates.GenericPlan}, {JobStates.KeyedLookups}"));
            var cmd = new NpgsqlBatchCommand(JobStates.CompleteBatch);
            cmd.Parameters.AddWithValue("tids", tids.ToArray());
            AddReports(cmd.Parameters, "tid_", byTid);
            AddReports(cmd.Parameters, "", reports);
            cmd.Parameters.AddWithValue("sender", _wakeups.NotifySuffix);
            JobStates.AddNow(cmd.Parameters, _time.GetUtcNow());
            sql.BatchCommands.Add(cmd);
            await using var r = await sql.ExecuteReaderAsync();
            await r.NextResultAsync();
            while (await r.ReadAsync())
            {
                var (id, owner, queue) = (r.GetGuid(1), r.IsDBNull(2) ? (Guid?)null : r.GetGuid(2), r.GetString(3));
                if (r.GetBoolean(0))
                {
                    completed.Add(id);
                    finished.Add((id, owner, queue, r.GetString(4), r.IsDBNull(5) ? null : r.GetDouble(5)));
                }
                else
                {
                    children.Add((id, owner, queue));
                }
            }
        }

        var byJob = batch.ToDictionary(b => b.Report.JobId, b => b.Report);
        foreach (var (id, owner, queue, kind, seconds) in finished)
        {
            var report = byJob[id];
            _leases.Remove(id, report.LeaseId);
            _metrics.JobFinished(queue, kind, JobState.Completed, seconds);
            _events.Publish(JobEvents.Completed(id, owner, report.Result));
        }

        AnnounceChildren(children);
        return completed;
    }

    private static void AddReports(NpgsqlParameterCollection parameters, string prefix, List<CompletionReport> reports)
    {
        parameters.AddWithValue(prefix + "ids", reports.Select(r => r.JobId).ToArray());
        parameters.AddWithValue(prefix + "leases", reports.Select(r => r.LeaseId).ToArray());
        parameters.Add(new NpgsqlParameter(prefix + "results", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = reports.Select(r => r.Result?.ToJsonString()).ToArray() });
    }

    /// <summary>Outputs come from handlers and remote workers: each must be a file inside the staging directory.</summary>
    private static void ValidateOutputs(CompletionReport report)
    {
        if (report.Outputs is not { Count: > 0 } outputs)
        {
            return;
        }

        var staging = Path.GetFullPath(report.StagingDirectory ?? throw new ArgumentException("Outputs without a staging directory."));
        foreach (var output in outputs)
        {
            var full = Path.GetFullPath(Path.Combine(staging, output.RelativePath));
            if (Path.IsPathRooted(output.RelativePath) || !full.StartsWith(staging + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
            {
                throw new ArgumentException($"Output '{output.RelativePath}' is not a file in the job's staging directory.");
            }
        }

        if (outputs.Select(o => (o.Type, o.Variant)).Distinct().Count() != outputs.Count)
        {
            throw new ArgumentException("Two outputs share the same type and variant.");
        }
    }

    private void AnnounceChildren(List<(Guid Id, Guid? Owner, string Queue)> children)
    {
        foreach (var (id, owner, queue) in children)
        {
            _events.Publish(JobEvents.Queued(id, owner));
            _wakeups.Wake(queue);
        }
    }
}
