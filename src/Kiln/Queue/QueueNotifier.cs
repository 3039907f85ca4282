using System.Collections.Concurrent;
using Kiln.Jobs;
using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// Holds one LISTEN connection per node and dispatches notifications by channel. Channels: <c>kiln_jobs</c>
/// (payload: a queue name that has new ready work, optionally tagged with its sender, see <see cref="QueueWakeups.OnNotification"/>) and <c>kiln_signals</c> (payload: <c>{reason}:{jobId}</c>, see <see cref="JobStopper"/>);
/// other features subscribe to their own. After a reconnect every queue is woken, since notifications sent while
/// the connection was down are lost.
/// </summary>
internal sealed class QueueNotifier(
    NpgsqlDataSource dataSource,
    QueueWakeups wakeups,
    ILogger<QueueNotifier> logger) : BackgroundService
{
    public const string JobsChannel = "kiln_jobs";
    public const string SignalsChannel = "kiln_signals";
    public const string EventsChannel = "kiln_events";

    /// <summary>Listened to from the start, so a subscriber created later misses nothing sent after its creation.</summary>
    private static readonly string[] Channels = [JobsChannel, SignalsChannel, EventsChannel];

    private static readonly TimeSpan KeepAliveInterval = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, List<Action<string>>> _handlers = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the first LISTEN is in place (tests and start-up wait on it).</summary>
    public Task Listening => _listening.Task;

    /// <summary>Adds a handler for a channel. Call before the host starts; handlers must not block.</summary>
    public void Subscribe(string channel, Action<string> handler)
    {
        var list = _handlers.GetOrAdd(channel, _ => []);
        lock (list)
        {
            list.Add(handler);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Subscribe(JobsChannel, wakeups.OnNotification);
        var delay = TimeSpan.FromMilliseconds(200);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var conn = await dataSource.OpenConnectionAsync(stoppingToken);
                conn.Notification += OnNotification;
                try
                {
                    await ListenAsync(conn, stoppingToken);
                    delay = TimeSpan.FromMilliseconds(200);
                    await KeepAliveAsync(conn, stoppingToken);
                }
                finally
                {
                    conn.Notification -= OnNotification;
                    await UnlistenAsync(conn);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "LISTEN connection lost; reconnecting in {Delay}", delay);
                await Task.Delay(delay, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
            }
        }
    }

    private async Task ListenAsync(NpgsqlConnection conn, CancellationToken stoppingToken)
    {
        foreach (var channel in Channels.Union(_handlers.Keys, StringComparer.Ordinal))
        {
            await using var listen = new NpgsqlCommand($"listen {channel}", conn);
            await listen.ExecuteNonQueryAsync(stoppingToken);
        }

        _listening.TrySetResult();
        wakeups.WakeAll();
    }

    private static async Task KeepAliveAsync(NpgsqlConnection conn, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            // A connection that died silently (no RST) would never deliver another notification: check it
            // when nothing arrived for a while, so a dead one is replaced instead of waited on forever.
            if (!await conn.WaitAsync(KeepAliveInterval, stoppingToken))
            {
                await using var ping = new NpgsqlCommand("select 1", conn) { CommandTimeout = 10 };
                await ping.ExecuteScalarAsync(stoppingToken);
            }
        }
    }

    /// <summary>
    /// The pool does not reset returned connections (No Reset On Close, Data/DataExtensions): a connection still
    /// listening would go on collecting notifications for whoever borrows it next, and hold back the server's
    /// notification queue while it idles. A broken connection is not pooled again; one that is open but cannot
    /// unlisten is kept out of the pool by clearing it.
    /// </summary>
    private async Task UnlistenAsync(NpgsqlConnection conn)
    {
        if (conn.State != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            await using var unlisten = new NpgsqlCommand("unlisten *", conn) { CommandTimeout = 5 };
            await unlisten.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            logger.LogDebug(e, "UNLISTEN failed; clearing the pool so the connection is not reused");
            NpgsqlConnection.ClearPool(conn);
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        if (!_handlers.TryGetValue(e.Channel, out var list))
        {
            return;
        }

        Action<string>[] snapshot;
        lock (list)
        {
            snapshot = [.. list];
        }

        foreach (var handler in snapshot)
        {
            try
            {
                handler(e.Payload);
            }
            catch (Exception ex)
            {
                logger.LogWarning(ex, "Handler for {Channel} failed on {Payload}", e.Channel, e.Payload);
            }
        }
    }
}
