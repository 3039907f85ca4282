using System.Collections.Concurrent;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Realtime;

/// <summary>
/// Carries job events between nodes that share the database, so a hub client on one node sees jobs run on another.
/// Only what some other node's clients watch is sent: each node announces the jobs its hub clients follow (and
/// whether an admin follows all), repeats that every <see cref="RealtimeOptions.InterestRefreshSeconds"/>, and
/// others forget it after three periods. With no remote watchers — the common case under bulk load — an event costs
/// one dictionary probe and nothing reaches PostgreSQL. Events that do go out are queued without blocking, progress
/// is coalesced per job, the oldest are dropped under pressure, and whatever is waiting goes out together, packed
/// into as few NOTIFY payloads as fit, in one statement. Received events go straight to this node's hub clients and
/// are never relayed again; a node skips its own notifications by their origin tag.
/// </summary>
internal sealed class EventRelay : BackgroundService, IJobEventListener
{
    private const int DrainBatch = 4096;
    private static readonly string SentLabels = KilnMetrics.Labels(("direction", "out"));
    private static readonly string EventPayloadLabels = KilnMetrics.Labels(("kind", "events"));
    private static readonly string InterestPayloadLabels = KilnMetrics.Labels(("kind", "interest"));
    private static readonly string ReceivedLabels = KilnMetrics.Labels(("direction", "in"));
    private static readonly string DroppedLabels = KilnMetrics.Labels(("path", "relay"));

    private readonly NpgsqlDataSource _dataSource;
    private readonly QueueNotifier _notifier;
    private readonly WatchRegistry _watches;
    private readonly HubEventDispatcher _hub;
    private readonly JobReader _jobs;
    private readonly KilnMetrics _metrics;
    private readonly RealtimeOptions _options;
    private readonly ILogger<EventRelay> _logger;
    private readonly CoalescingEventQueue _outbound;
    private readonly string _ownPrefix;
    private readonly ConcurrentDictionary<Guid, long> _remoteInterest = new();
    private readonly ConcurrentQueue<Guid?> _newInterest = new();
    private readonly OriginLeases _remoteAll = new();
    private readonly OriginLeases _remoteNew = new();
    private readonly long _interestTtlMs;
    private int _refreshRequested;
    private CancellationToken _stopping;

    public EventRelay(
        NpgsqlDataSource dataSource,
        QueueNotifier notifier,
        NodeIdentity node,
        WatchRegistry watches,
        HubEventDispatcher hub,
        JobReader jobs,
        KilnMetrics metrics,
        IOptions<RealtimeOptions> options,
        ILogger<EventRelay> logger)
    {
        _dataSource = dataSource;
        _notifier = notifier;
        _watches = watches;
        _hub = hub;
        _jobs = jobs;
        _metrics = metrics;
        _options = options.Value;
        _logger = logger;
        _outbound = new CoalescingEventQueue(_options.RelayQueueCapacity);
        _interestTtlMs = (long)(_options.InterestRefreshSeconds * 3000);

        // The node name tells people where an event came from; the nonce keeps two processes given the same name apart.
        Origin = $"{node.Name}#{Guid.NewGuid().ToString("N")[..8]}";
        _ownPrefix = RelayCodec.PrefixOf(Origin);
        if (_options.RelayEnabled)
        {
            notifier.Subscribe(QueueNotifier.EventsChannel, OnNotification);
            watches.Changed += OnWatchChanged;
        }
    }


    /// <summary>This process's tag on the payloads it sends.</summary>
    public string Origin { get; }

    /// <summary>Whether some other node's hub clients currently watch the job.</summary>
    public bool RemoteWants(Guid jobId)
    {
        var now = Environment.TickCount64;
        return _remoteAll.Active(now) || (_remoteInterest.TryGetValue(jobId, out var until) && until > now);
    }

    /// <summary>Another node wants new jobs announced (one of its hub connections called <c>join-new</c>).</summary>
    public bool RemoteWantsAnnouncements => _remoteNew.Active(Environment.TickCount64);

    public void OnJobEvent(JobEvent jobEvent)
    {
        var wanted = RemoteWants(jobEvent.JobId) || (HubEventDispatcher.Announces(jobEvent) && RemoteWantsAnnouncements);
        if (_options.RelayEnabled && wanted && !_outbound.Enqueue(jobEvent))
        {
            _metrics.Increment("kiln_realtime_events_dropped_total", "Job events dropped because a realtime queue was full.", DroppedLabels);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.RelayEnabled)
        {
            return;
        }

        _stopping = stoppingToken;
        await _notifier.Listening.WaitAsync(stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        var refreshEvery = TimeSpan.FromSeconds(_options.InterestRefreshSeconds);
        var nextRefresh = DateTime.UtcNow + refreshEvery;
        await SendSafelyAsync([RelayCodec.EncodeHello(Origin)], 0, stoppingToken);
        var batch = new List<JobEvent>(256);
        while (!stoppingToken.IsCancellationRequested)
        {
            var wait = nextRefresh - DateTime.UtcNow;
            if (wait > TimeSpan.Zero && !await _outbound.WaitAsync(wait, stoppingToken))
            {
                return;
            }

            var payloads = new List<string>();
            if (DateTime.UtcNow >= nextRefresh || Interlocked.Exchange(ref _refreshRequested, 0) == 1)
            {
                nextRefresh = DateTime.UtcNow + refreshEvery;
                var changed = !_newInterest.IsEmpty;
                _newInterest.Clear();
                PruneRemoteInterest();
                if (_watches.WatchesAll || _watches.WatchesNew || _watches.Count > 0 || changed)
                {
                    payloads.AddRange(RelayCodec.EncodeInterest(Origin, _watches.Jobs, _watches.WatchesAll, _options.NotifyPayloadBytes, _watches.WatchesNew));
                }
            }
            else if (!_newInterest.IsEmpty)
            {
                var fresh = new List<Guid>();
                while (_newInterest.TryDequeue(out var id))
                {
                    if (id is { } jobId)
                    {
                        fresh.Add(jobId);
                    }
                }

                // Every interest message states whether this node watches everything now, so stopping is announced too.
                payloads.AddRange(RelayCodec.EncodeInterest(Origin, fresh, _watches.WatchesAll, _options.NotifyPayloadBytes, _watches.WatchesNew));
            }

            var interestPayloads = payloads.Count;
            batch.Clear();
            if (_outbound.Drain(batch, DrainBatch) > 0)
            {
                payloads.AddRange(RelayCodec.EncodeEvents(Origin, batch, _options.NotifyPayloadBytes));
                _metrics.Increment("kiln_relay_events_total", "Job events relayed between nodes.", SentLabels, batch.Count);
            }

            if (payloads.Count > 0)
            {
                await SendSafelyAsync(payloads, payloads.Count - interestPayloads, stoppingToken);
            }
        }
    }

    /// <summary>A job gained its first watcher here (id), or watching everything started or stopped (null).</summary>
    private void OnWatchChanged(Guid? jobId)
    {
        _newInterest.Enqueue(jobId);
        _outbound.Poke();
    }

    /// <summary>Sends the payloads in one statement; <paramref name="eventPayloads"/> of them (the last ones) carry events.</summary>
    private async Task SendSafelyAsync(List<string> payloads, int eventPayloads, CancellationToken ct)
    {
        try
        {
            await using var cmd = _dataSource.CreateCommand("select pg_notify(@channel, p) from unnest(@payloads) as p");
            cmd.Parameters.AddWithValue("channel", QueueNotifier.EventsChannel);
            cmd.Parameters.AddWithValue("payloads", payloads.ToArray());
            await cmd.ExecuteNonQueryAsync(ct);
            _metrics.Increment("kiln_relay_notifications_total", "NOTIFY payloads sent by the event relay.", EventPayloadLabels, eventPayloads);
            _metrics.Increment("kiln_relay_notifications_total", "NOTIFY payloads sent by the event relay.", InterestPayloadLabels, payloads.Count - eventPayloads);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: events in flight are best effort.
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            // Relayed events are a live view, not a record: the database holds the truth, so drop and carry on.
            _logger.LogWarning(e, "Relaying {Count} payloads to other nodes failed; they are dropped", payloads.Count);
        }
    }

    /// <summary>Runs on the notifier's connection: parses and hands on, never waits.</summary>
    private void OnNotification(string payload)
    {
        if (payload.StartsWith(_ownPrefix, StringComparison.Ordinal))
        {
            return;
        }

        var message = RelayCodec.Decode(payload);
        if (message is null)
        {
            _metrics.Rejected("relay", "malformed");
            return;
        }

        switch (message.Kind)
        {
            case RelayMessageKind.Hello:
                Interlocked.Exchange(ref _refreshRequested, 1);
                _outbound.Poke();
                break;
            case RelayMessageKind.Interest:
                var until = Environment.TickCount64 + _interestTtlMs;
                _remoteAll.Set(message.Origin, message.InterestAll, until);
                _remoteNew.Set(message.Origin, message.InterestNew, until);

                foreach (var id in message.Interest)
                {
                    _remoteInterest[id] = until;
                }

                break;
            case RelayMessageKind.Events:
                _metrics.Increment("kiln_relay_events_total", "Job events relayed between nodes.", ReceivedLabels, message.Events.Count);
                foreach (var e in message.Events)
                {
                    if (e.ByReference)
                    {
                        _ = DeliverFromRowAsync(e);
                    }
                    else
                    {
                        _hub.Deliver(new JobEvent(e.Type, e.JobId, e.OwnerId, e.Data!));
                    }
                }

                break;
        }
    }

    /// <summary>An event too large for NOTIFY: the job row has what it said (a result, an error).</summary>
    private async Task DeliverFromRowAsync(RelayedEvent e)
    {
        try
        {
            var job = await _jobs.GetAsync(e.JobId, null, _stopping);
            if (job is null)
            {
                return;
            }

            var rebuilt = e.Type switch
            {
                JobEventType.Completed or JobEventType.Error => HubEventDispatcher.TerminalEvents(job).FirstOrDefault(x => x.Type == e.Type),
                _ => JobEvents.Update(job.Id, job.OwnerId, job.State, job.Stage, job.Progress),
            };
            if (rebuilt is not null)
            {
                _hub.Deliver(rebuilt);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Stopping: the hub clients are being told.
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            _logger.LogWarning(ex, "Reading job {JobId} for a relayed {Type} failed", e.JobId, e.Type);
        }
    }

    private void PruneRemoteInterest()
    {
        var now = Environment.TickCount64;
        foreach (var (id, until) in _remoteInterest)
        {
            if (until <= now)
            {
                _remoteInterest.TryRemove(new KeyValuePair<Guid, long>(id, until));
            }
        }

        _remoteAll.Prune(now);
        _remoteNew.Prune(now);
    }
}
