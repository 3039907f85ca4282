using System.Diagnostics;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;

namespace Kiln.Queue;

/// <summary>
/// The queue side of <see cref="IJobDispatcher"/>: progress, heartbeats, failures and releases. Leasing lives in
/// <see cref="JobLeaser"/>, completion in <see cref="CompletionWriter"/>.
/// </summary>
internal sealed class JobDispatcher(
    NpgsqlDataSource dataSource,
    JobLeaser leaser,
    LeaseRegistry leases,
    CompletionWriter completions,
    IJobEventSink events,
    KilnMetrics metrics,
    QueueWakeups wakeups,
    IOptions<QueueOptions> options,
    TimeProvider time) : IJobDispatcher
{
    private readonly QueueOptions _options = options.Value;
    private readonly long _progressIntervalTicks = (long)(Stopwatch.Frequency / options.Value.MaxProgressWritesPerSecond);

    public Task<LeaseResult> LeaseAsync(LeaseRequest request, CancellationToken cancellationToken) =>
        leaser.LeaseAsync(request, cancellationToken);

    public async ValueTask<bool> ReportProgressAsync(ProgressReport report, CancellationToken cancellationToken)
    {
        if (!leases.TryGet(report.JobId, report.LeaseId, out var lease) || !double.IsFinite(report.Progress))
        {
            return false;
        }

        var progress = Math.Clamp(report.Progress, 0, 100);
        events.Publish(JobEvents.Progress(report.JobId, lease.OwnerId, report.Stage, progress, report.Speed, report.EtaSeconds, report.TotalBytes));
        var now = Stopwatch.GetTimestamp();
        if (now - lease.LastWriteTicks < _progressIntervalTicks)
        {
            return true;
        }

        lease.LastWriteTicks = now;
        await using var cmd = dataSource.CreateCommand(JobStates.Progress);
        JobStates.AddNow(cmd, time);
        cmd.Parameters.AddWithValue("p", (float)progress);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("stage", NpgsqlDbType.Text) { TypedValue = report.Stage });
        cmd.Parameters.Add(new NpgsqlParameter<double?>("speed", NpgsqlDbType.Double) { TypedValue = report.Speed });
        cmd.Parameters.Add(new NpgsqlParameter<double?>("eta", NpgsqlDbType.Double) { TypedValue = report.EtaSeconds });
        cmd.Parameters.Add(new NpgsqlParameter<long?>("bytes", NpgsqlDbType.Bigint) { TypedValue = report.TotalBytes });
        cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
        cmd.Parameters.AddWithValue("id", report.JobId);
        cmd.Parameters.AddWithValue("lease_id", report.LeaseId);
        if (await cmd.ExecuteNonQueryAsync(cancellationToken) == 0)
        {
            leases.Remove(report.JobId, report.LeaseId);
            return false;
        }

        return true;
    }

    public async Task<int> HeartbeatAsync(string workerId, IReadOnlyCollection<Guid> leaseIds, CancellationToken cancellationToken)
    {
        // By primary key: the leases held here say which jobs they are for. A lease this node does not know of
        // (expired, cancelled, granted by another node) is not renewed.
        var (jobIds, held) = leases.JobsOf(workerId, leaseIds);
        if (jobIds.Length == 0)
        {
            return 0;
        }

        await using var cmd = dataSource.CreateCommand(JobStates.Heartbeat);
        JobStates.AddNow(cmd, time);
        cmd.Parameters.AddWithValue("lease", TimeSpan.FromSeconds(_options.LeaseSeconds));
        cmd.Parameters.AddWithValue("ids", jobIds);
        cmd.Parameters.AddWithValue("leases", held);
        cmd.Parameters.AddWithValue("worker", workerId);
        return await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    public Task<bool> CompleteAsync(CompletionReport report, CancellationToken cancellationToken) =>
        completions.CompleteAsync(report, cancellationToken);

    public async Task<bool> FailAsync(FailureReport report, CancellationToken cancellationToken)
    {
        leases.TryGet(report.JobId, report.LeaseId, out var held);
        leases.Remove(report.JobId, report.LeaseId);
        var message = Truncate(ErrorText.WithoutPaths(report.Message), 4000);
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        string state, queue, kind;
        Guid? owner;
        double? seconds;
        await using (var cmd = new NpgsqlCommand(JobStates.Fail, conn, tx))
        {
            JobStates.AddNow(cmd, time);
            cmd.Parameters.AddWithValue("retryable", report.Retryable);
            cmd.Parameters.AddWithValue("base", _options.BackoffBaseSeconds);
            cmd.Parameters.AddWithValue("code", Truncate(report.ErrorCode, 100));
            cmd.Parameters.AddWithValue("message", message);
            cmd.Parameters.AddWithValue("id", report.JobId);
            cmd.Parameters.AddWithValue("lease_id", report.LeaseId);
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken))
            {
                return false;
            }

            (state, queue, kind) = (r.GetString(0), r.GetString(1), r.GetString(2));
            owner = r.IsDBNull(3) ? null : r.GetGuid(3);
            seconds = r.IsDBNull(4) ? null : r.GetDouble(4);
        }

        var cascaded = state == JobState.Failed
            ? await JobStates.CascadeAsync(conn, tx, [report.JobId], JobState.Failed, "parent_failed", "A job this one depends on failed.", time, cancellationToken)
            : [];
        if (state == JobState.Queued)
        {
            await JobRows.NotifyQueuesAsync(conn, tx, [queue], wakeups, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        metrics.JobFinished(queue, kind, state == JobState.Failed ? JobState.Failed : "retried", seconds, report.ErrorCode);
        if (state == JobState.Failed)
        {
            events.Publish(JobEvents.Error(report.JobId, owner ?? held?.OwnerId, report.ErrorCode, message));
            foreach (var (id, childOwner) in cascaded)
            {
                events.Publish(JobEvents.Error(id, childOwner, "parent_failed", "A job this one depends on failed."));
            }
        }
        else
        {
            // Its NOTIFY names this node, which ignores it: the loop learns here when the retry is due.
            wakeups.Wake(queue);
            events.Publish(JobEvents.Update(report.JobId, owner, JobState.Queued));
        }

        return true;
    }

    public async Task<bool> ReleaseAsync(Guid jobId, Guid leaseId, CancellationToken cancellationToken)
    {
        leases.Remove(jobId, leaseId);
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(JobStates.Release, conn);
        JobStates.AddNow(cmd, time);
        cmd.Parameters.AddWithValue("id", jobId);
        cmd.Parameters.AddWithValue("lease_id", leaseId);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken);
    }

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
