using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Realtime;

/// <summary>
/// Sends job events to hub clients. <see cref="OnJobEvent"/> runs on the queue's hot paths, so it only drops events
/// of jobs nobody here watches and queues the rest; pumps (one per partition of job ids, so one job's events keep
/// their order) send them to the groups <c>job:{id}</c> and, for admins watching everything, <c>jobs:all</c>.
/// Events relayed from other nodes come in through <see cref="Deliver"/>.
/// </summary>
internal sealed class HubEventDispatcher : BackgroundService, IJobEventListener
{
    public const string AllGroup = "jobs:all";

    private const int DrainBatch = 256;
    private static readonly string DroppedLabels = KilnMetrics.Labels(("path", "hub"));

    private readonly IHubContext<JobsHub> _hub;
    private readonly WatchRegistry _watches;
    private readonly JobReader _jobs;
    private readonly KilnMetrics _metrics;
    private readonly RealtimeOptions _options;
    private readonly ILogger<HubEventDispatcher> _logger;
    private readonly CoalescingEventQueue[] _partitions;
    private readonly CancellationTokenSource _stopping = new();

    public HubEventDispatcher(
        IHubContext<JobsHub> hub,
        WatchRegistry watches,
        JobReader jobs,
        KilnMetrics metrics,
        IOptions<RealtimeOptions> options,
        ILogger<HubEventDispatcher> logger)
    {
        _hub = hub;
        _watches = watches;
        _jobs = jobs;
        _metrics = metrics;
        _options = options.Value;
        _logger = logger;
        var count = Math.Clamp(Environment.ProcessorCount, 2, 16);
        _partitions = new CoalescingEventQueue[count];
        for (var i = 0; i < count; i++)
        {
            _partitions[i] = new CoalescingEventQueue(Math.Max(1, _options.HubQueueCapacity / count));
        }
    }


    public static string JobGroup(Guid jobId) => "job:" + jobId.ToString("D");

    /// <summary>Admins hearing of every new job (<c>join-new</c>), without following every job's progress.</summary>
    public const string NewGroup = "jobs:new";

    /// <summary>A client key hearing of its own new jobs (<c>join-new</c>).</summary>
    public static string OwnerNewGroup(Guid ownerId) => "owner:" + ownerId.ToString("D") + ":new";

    /// <summary>
    /// Whether <see cref="NewGroup"/> (and the owner's group) hears an event: a new (or requeued) job, or a new or
    /// activated transcript version, whose edits travel under the asset id that nobody joins as a job.
    /// </summary>
    public static bool Announces(JobEvent jobEvent) => jobEvent.Type is JobEventType.Queued or JobEventType.TranscriptUpdated;

    public void OnJobEvent(JobEvent jobEvent) => Deliver(jobEvent);

    /// <summary>Queues an event for the hub clients watching its job; never blocks.</summary>
    public void Deliver(JobEvent jobEvent)
    {
        if (!_watches.WatchesAll && !_watches.IsWatched(jobEvent.JobId) && !(_watches.WatchesNew && Announces(jobEvent)))
        {
            return;
        }

        if (!_partitions[(int)((uint)jobEvent.JobId.GetHashCode() % (uint)_partitions.Length)].Enqueue(jobEvent))
        {
            _metrics.Increment("kiln_realtime_events_dropped_total", "Job events dropped because a realtime queue was full.", DroppedLabels);
        }
    }

    /// <summary>
    /// Reads the job again after the reconcile delay and sends its end if it ended without the watchers being told:
    /// another node may not have known yet that this node watches it.
    /// </summary>
    public void ScheduleReconcile(Guid jobId)
    {
        if (_options.ReconcileDelaySeconds > 0)
        {
            _ = ReconcileAsync(jobId, _stopping.Token);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await base.StopAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _stopping.Dispose();
        base.Dispose();
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_partitions.Select(p => Task.Run(() => PumpAsync(p, stoppingToken), CancellationToken.None)));

    private async Task PumpAsync(CoalescingEventQueue queue, CancellationToken stoppingToken)
    {
        var batch = new List<JobEvent>(DrainBatch);
        while (await queue.WaitAsync(Timeout.InfiniteTimeSpan, stoppingToken))
        {
            while (true)
            {
                batch.Clear();
                if (queue.Drain(batch, DrainBatch) == 0)
                {
                    break;
                }

                // Jobs go to different connections, so their sends run side by side; one job's events stay in order.
                if (batch.Count == 1)
                {
                    await SendInOrderAsync(batch, stoppingToken);
                }
                else
                {
                    await Task.WhenAll(batch.GroupBy(e => e.JobId).Select(g => SendInOrderAsync(g, stoppingToken)));
                }

                if (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    private async Task SendInOrderAsync(IEnumerable<JobEvent> events, CancellationToken ct)
    {
        foreach (var jobEvent in events)
        {
            try
            {
                await SendAsync(jobEvent, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "Sending {Type} for job {JobId} to hub clients failed", jobEvent.Type, jobEvent.JobId);
            }
        }
    }

    private async Task SendAsync(JobEvent jobEvent, CancellationToken ct)
    {
        var watched = _watches.TryGet(jobEvent.JobId, out var watch);
        var data = jobEvent.Data;
        if (jobEvent.Type == JobEventType.Queued && data["position"] is null && watched)
        {
            // The queue announces new jobs without a position (computing it costs a count); a watcher gets it.
            data = new JsonObject { ["jobId"] = jobEvent.JobId, ["position"] = await _jobs.QueuePositionAsync(jobEvent.JobId, ct) };
        }

        if (watched)
        {
            if (IsTerminal(jobEvent))
            {
                watch.MarkTerminalSent();
            }

            await _hub.Clients.Group(JobGroup(jobEvent.JobId)).SendAsync(jobEvent.Type, data, ct);
        }

        if (_watches.WatchesAll)
        {
            await _hub.Clients.Group(AllGroup).SendAsync(jobEvent.Type, data, ct);
        }

        if (_watches.WatchesNew && Announces(jobEvent))
        {
            // A connection in both the job's group and a "new" group hears the announcement twice; pages key by job id.
            await _hub.Clients.Group(NewGroup).SendAsync(jobEvent.Type, data, ct);
            if (jobEvent.OwnerId is { } owner)
            {
                await _hub.Clients.Group(OwnerNewGroup(owner)).SendAsync(jobEvent.Type, data, ct);
            }
        }
    }

    private async Task ReconcileAsync(Guid jobId, CancellationToken ct)
    {
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(_options.ReconcileDelaySeconds), ct);
            if (!_watches.TryGet(jobId, out var watch) || watch.TerminalSent)
            {
                return;
            }

            var job = await _jobs.GetAsync(jobId, null, ct);
            if (job is null || !JobState.IsTerminal(job.State) || watch.TerminalSent)
            {
                return;
            }

            _logger.LogDebug("Job {JobId} ended ({State}) without its watchers being told; sending it now", jobId, job.State);
            foreach (var jobEvent in TerminalEvents(job))
            {
                Deliver(jobEvent);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Shutting down: the clients are being told the server stops.
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            _logger.LogWarning(e, "Reconciling job {JobId} for its watchers failed", jobId);
        }
    }

    /// <summary>The events the queue publishes when a job ends, rebuilt from its row.</summary>
    internal static IEnumerable<JobEvent> TerminalEvents(Job job) => job.State switch
    {
        JobState.Completed => [JobEvents.Completed(job.Id, job.OwnerId, job.Result)],
        JobState.Failed => [JobEvents.Error(job.Id, job.OwnerId, job.ErrorCode ?? "failed", job.ErrorMessage ?? "The job failed.")],
        JobState.Cancelled =>
        [
            JobEvents.Error(job.Id, job.OwnerId, job.ErrorCode ?? "cancelled", job.ErrorMessage ?? "Cancelled."),
            JobEvents.Update(job.Id, job.OwnerId, JobState.Cancelled),
        ],
        _ => [],
    };

    private static bool IsTerminal(JobEvent jobEvent) => jobEvent.Type switch
    {
        JobEventType.Completed or JobEventType.Error => true,
        JobEventType.Update => jobEvent.Data["status"] is JsonValue v && v.TryGetValue<string>(out var s) && JobState.IsTerminal(s),
        _ => false,
    };
}
