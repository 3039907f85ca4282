using Npgsql;
using NpgsqlTypes;

namespace Kiln.Jobs;

/// <summary>The outcome of a state change asked for through the API.</summary>
internal enum CommandOutcome
{
    Done,
    NotFound,
    Conflict,
}

internal sealed record CommandResult(CommandOutcome Outcome, string? ErrorCode = null, string? Message = null, string? State = null)
{
    public static CommandResult NotFound { get; } = new(CommandOutcome.NotFound);

    public static CommandResult Conflict(string code, string message, string state) => new(CommandOutcome.Conflict, code, message, state);
}

/// <summary>
/// Cancel, pause, resume and retry. Each locks the job row, checks the transition is allowed from its current
/// state, writes it (the statements are <see cref="JobStates"/>'), and only then stops the job where it runs, so a
/// worker's late report finds its lease gone.
/// </summary>
internal sealed class JobCommands(
    NpgsqlDataSource dataSource,
    IJobStopper stopper,
    JobKindCatalog catalog,
    QueueWakeups wakeups,
    IJobEventSink events,
    TimeProvider time)
{
    public async Task<CommandResult> CancelAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken)
    {
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        var current = await LockAsync(conn, tx, id, ownerScope, cancellationToken);
        if (current is null)
        {
            return CommandResult.NotFound;
        }

        if (JobState.IsTerminal(current.Value.State))
        {
            return CommandResult.Conflict("job.not_cancellable", $"The job is already {current.Value.State}.", current.Value.State);
        }

        await SetAsync(conn, tx, id, JobStates.Cancel, cancellationToken);
        var cascaded = await JobStates.CascadeAsync(conn, tx, [id], JobState.Cancelled, "parent_cancelled", "A job this one depends on was cancelled.", time, cancellationToken);
        await tx.CommitAsync(cancellationToken);

        if (current.Value.State == JobState.Running)
        {
            await stopper.StopAsync([id], JobStopReason.Cancelled, cancellationToken);
        }

        events.Publish(JobEvents.Error(id, current.Value.Owner, "cancelled", "Cancelled on request."));
        events.Publish(JobEvents.Update(id, current.Value.Owner, JobState.Cancelled));
        foreach (var (child, owner) in cascaded)
        {
            events.Publish(JobEvents.Update(child, owner, JobState.Cancelled));
        }

        return new CommandResult(CommandOutcome.Done, State: JobState.Cancelled);
    }

    public async Task<CommandResult> PauseAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken)
    {
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        var current = await LockAsync(conn, tx, id, ownerScope, cancellationToken);
        if (current is null)
        {
            return CommandResult.NotFound;
        }

        var (state, kind, owner) = current.Value;
        if (state == JobState.Running && !(catalog.TryGet(kind, out var info) && info.Pausable))
        {
            return CommandResult.Conflict("job.not_pausable", $"A running {kind} job cannot be paused; cancel it instead.", state);
        }

        if (state is not (JobState.Queued or JobState.Waiting or JobState.Running))
        {
            return CommandResult.Conflict("job.not_pausable", $"A {state} job cannot be paused.", state);
        }

        await SetAsync(conn, tx, id, JobStates.Pause, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        if (state == JobState.Running)
        {
            await stopper.StopAsync([id], JobStopReason.Paused, cancellationToken);
        }

        events.Publish(JobEvents.Update(id, owner, JobState.Paused));
        return new CommandResult(CommandOutcome.Done, State: JobState.Paused);
    }

    public async Task<CommandResult> ResumeAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken)
    {
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        var current = await LockAsync(conn, tx, id, ownerScope, cancellationToken);
        if (current is null)
        {
            return CommandResult.NotFound;
        }

        if (current.Value.State != JobState.Paused)
        {
            return CommandResult.Conflict("job.not_paused", $"Only a paused job can be resumed; this one is {current.Value.State}.", current.Value.State);
        }

        var state = await ReadyStateAsync(conn, tx, id, cancellationToken);
        var queue = await SetAsync(conn, tx, id, JobStates.Resume, cancellationToken, ("next", state));
        await JobRows.NotifyQueuesAsync(conn, tx, [queue], wakeups, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        wakeups.Wake(queue);
        events.Publish(state == JobState.Queued ? JobEvents.Queued(id, current.Value.Owner) : JobEvents.Update(id, current.Value.Owner, state));
        return new CommandResult(CommandOutcome.Done, State: state);
    }

    public async Task<CommandResult> RetryAsync(Guid id, Guid? ownerScope, CancellationToken cancellationToken)
    {
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await conn.BeginTransactionAsync(cancellationToken);
        var current = await LockAsync(conn, tx, id, ownerScope, cancellationToken);
        if (current is null)
        {
            return CommandResult.NotFound;
        }

        if (current.Value.State is not (JobState.Failed or JobState.Cancelled))
        {
            return CommandResult.Conflict("job.not_retryable", $"Only a failed or cancelled job can be retried; this one is {current.Value.State}.", current.Value.State);
        }

        var state = await ReadyStateAsync(conn, tx, id, cancellationToken);
        var queue = await SetAsync(conn, tx, id, JobStates.Retry, cancellationToken, ("next", state));

        // Children that failed only because this job did get their chance back.
        await using (var children = new NpgsqlCommand(JobStates.RetryDescendants, conn, tx))
        {
            children.Parameters.AddWithValue("id", id);
            await children.ExecuteNonQueryAsync(cancellationToken);
        }

        await JobRows.NotifyQueuesAsync(conn, tx, [queue], wakeups, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        wakeups.Wake(queue);
        events.Publish(JobEvents.Queued(id, current.Value.Owner));
        return new CommandResult(CommandOutcome.Done, State: state);
    }

    private static async Task<(string State, string Kind, Guid? Owner)?> LockAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, Guid id, Guid? ownerScope, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "select state, kind, owner_id from jobs where id = @id and (@owner::uuid is null or owner_id = @owner) for update", conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.Add(new NpgsqlParameter<Guid?>("owner", NpgsqlDbType.Uuid) { TypedValue = ownerScope });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetGuid(2)) : null;
    }

    /// <summary>queued when the job has no parent or its parent completed, else waiting.</summary>
    private static async Task<string> ReadyStateAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Guid id, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            select case when j.parent_id is null or p.state = 'completed' or p.id is null then 'queued' else 'waiting' end
            from jobs j left join jobs p on p.id = j.parent_id where j.id = @id
            """, conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        return (string)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Runs one of <see cref="JobStates"/>' transitions on the locked row; returns the job's queue.</summary>
    private async Task<string> SetAsync(
        NpgsqlConnection conn, NpgsqlTransaction tx, Guid id, string transition, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await using var cmd = new NpgsqlCommand(transition, conn, tx);
        cmd.Parameters.AddWithValue("id", id);
        // Not every transition is time-based (a pause is not); only those get the clock.
        if (transition.Contains("@now", StringComparison.Ordinal))
        {
            JobStates.AddNow(cmd, time);
        }

        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return (string)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
