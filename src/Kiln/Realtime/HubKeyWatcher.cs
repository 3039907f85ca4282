using System.Collections.Concurrent;
using Kiln.Core;
using Kiln.Observability;
using Kiln.Security;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Realtime;

/// <summary>
/// Closes hub connections whose API key has been revoked. A connection is authenticated once, when it opens, so
/// without this a revoked client would keep receiving its jobs' events for as long as the connection lives. Keys
/// are checked every <see cref="RealtimeOptions.KeyCheckIntervalSeconds"/>, which also catches revocations made by
/// <c>kiln keys revoke</c> or through another node.
/// </summary>
internal sealed class HubKeyWatcher(ApiKeyStore keys, IOptions<RealtimeOptions> options, ILogger<HubKeyWatcher> logger) : BackgroundService, IHubConnectionCount
{
    private readonly ConcurrentDictionary<string, (Guid KeyId, HubCallerContext Context)> _connections = new();

    public void Track(HubCallerContext context)
    {
        // The hub's policy admits API keys only (client or admin), so every connection has a key id.
        if (Guid.TryParse(context.UserIdentifier, out var keyId))
        {
            _connections[context.ConnectionId] = (keyId, context);
        }
    }

    public void Untrack(string connectionId) => _connections.TryRemove(connectionId, out _);

    /// <summary>Open hub connections on this node (for /metrics).</summary>
    public int Count => _connections.Count;

    public int HubConnections => Count;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.KeyCheckIntervalSeconds));
        while (await TimerTicks.NextAsync(timer, stoppingToken))
        {
            try
            {
                await CloseRevokedAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                logger.LogWarning(e, "Checking hub connections' keys failed; will try again");
            }
        }
    }

    private async Task CloseRevokedAsync(CancellationToken cancellationToken)
    {
        var connected = _connections.Values.Select(c => c.KeyId).Distinct().ToArray();
        if (connected.Length == 0)
        {
            return;
        }

        var revoked = await keys.RevokedAsync(connected, cancellationToken);
        foreach (var (id, (keyId, context)) in _connections)
        {
            if (revoked.Contains(keyId))
            {
                logger.LogInformation("Closing hub connection {ConnectionId}: its key {KeyId} was revoked", id, keyId);
                Untrack(id);
                context.Abort();
            }
        }
    }
}
