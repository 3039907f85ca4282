using System.Collections.Concurrent;
using System.Net.WebSockets;
using Kiln.Core;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Security;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Workers;

/// <summary>
/// The remote workers connected to this node. Disconnects workers whose token was revoked (at once for revocations
/// through this node's API, within <see cref="RemoteWorkerOptions.TokenCheckIntervalSeconds"/> otherwise, e.g.
/// <c>kiln keys revoke</c> or another node), and on shutdown stops leasing to them, gives running jobs the
/// in-process workers' grace period, then ends the sessions so what is left goes back to the queue.
/// </summary>
internal sealed class RemoteWorkerRegistry(
    WorkerStore store,
    ApiKeyStore keyStore,
    IOptions<RemoteWorkerOptions> options,
    IOptions<WorkerOptions> workerOptions,
    IOptions<SecurityOptions> securityOptions,
    ILogger<RemoteWorkerRegistry> logger) : BackgroundService, IHostedLifecycleService, IRemoteWorkerCount
{
    private readonly ConcurrentDictionary<WorkerSession, byte> _sessions = new();

    // Keys seen revoked, kept longer than the authentication cache holds a key, so a worker cut off for a revoked
    // token cannot slip back in on a cached authentication.
    private readonly ConcurrentDictionary<Guid, DateTime> _revoked = new();
    private Task _drain = Task.CompletedTask;
    private volatile bool _stopping;

    public bool Accepting => !_stopping;

    public IReadOnlyList<WorkerSession> Sessions => [.. _sessions.Keys];

    public int ConnectedWorkers => _sessions.Count;

    public void Add(WorkerSession session) => _sessions[session] = 0;

    public void Remove(WorkerSession session) => _sessions.TryRemove(session, out _);

    public bool IsRevoked(Guid keyId) => _revoked.TryGetValue(keyId, out var until) && until > DateTime.UtcNow;

    /// <summary>Ends every session of a revoked key here and refuses it from now on; returns how many sessions ended.</summary>
    public int Revoke(Guid keyId)
    {
        _revoked[keyId] = DateTime.UtcNow + TimeSpan.FromSeconds((2 * securityOptions.Value.KeyCacheSeconds) + 5);
        return Disconnect(keyId, "worker token revoked");
    }

    /// <summary>Ends every session of the key here; returns how many.</summary>
    public int Disconnect(Guid keyId, string reason)
    {
        var count = 0;
        foreach (var session in _sessions.Keys.Where(s => s.KeyId == keyId))
        {
            logger.LogWarning("Disconnecting worker {WorkerId}: {Reason}", session.Id, reason);
            session.End(WebSocketCloseStatus.PolicyViolation, reason);
            count++;
        }

        return count;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.TokenCheckIntervalSeconds));
        var nextPrune = DateTime.UtcNow;
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                var keys = _sessions.Keys.Select(s => s.KeyId).Distinct().ToArray();
                if (keys.Length > 0)
                {
                    foreach (var revoked in await keyStore.RevokedAsync(keys, stoppingToken))
                    {
                        Revoke(revoked);
                    }
                }

                foreach (var (key, until) in _revoked)
                {
                    if (until < DateTime.UtcNow)
                    {
                        _revoked.TryRemove(key, out _);
                    }
                }

                if (DateTime.UtcNow >= nextPrune)
                {
                    nextPrune = DateTime.UtcNow.AddHours(1);
                    await store.PruneAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                logger.LogWarning(e, "Checking worker tokens failed; will try again");
            }
        }
    }

    /// <summary>Runs before anything stops: the drain starts at once, alongside the in-process workers' own grace period.</summary>
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        _drain = DrainAsync(cancellationToken);
        return Task.CompletedTask;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _drain.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await base.StopAsync(cancellationToken);
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        var sessions = _sessions.Keys.ToArray();
        if (sessions.Length == 0)
        {
            return;
        }

        var grace = TimeSpan.FromSeconds(workerOptions.Value.ShutdownTimeoutSeconds);
        logger.LogInformation("Draining {Count} remote workers for up to {Grace}", sessions.Length, grace);
        foreach (var session in sessions)
        {
            session.BeginShutdown(grace);
        }

        var deadline = DateTime.UtcNow + grace;
        while (DateTime.UtcNow < deadline && !cancellationToken.IsCancellationRequested && sessions.Any(s => s.RunningCount > 0 && !s.Ended.IsCompleted))
        {
            await Task.Delay(100, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        foreach (var session in sessions)
        {
            session.End(WebSocketCloseStatus.EndpointUnavailable, "server shutting down");
        }

        await Task.WhenAll(sessions.Select(s => s.Ended)).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken)
            .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
