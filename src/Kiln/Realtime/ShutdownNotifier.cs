using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR;

namespace Kiln.Realtime;

/// <summary>
/// Tells every hub client the server is stopping (<c>server-shutdown</c>) before its connection closes, so a
/// dashboard can say so and reconnect elsewhere instead of showing a dead connection.
/// <para>
/// On SIGTERM or Ctrl+C the console lifetime fires ApplicationStopping <em>before</em> the host calls
/// <see cref="StoppingAsync"/>, and SignalR's connection manager closes every connection from its own
/// ApplicationStopping callback: a notice sent from <see cref="StoppingAsync"/> alone then reached 1 client in 3.
/// So the notice is also sent from an ApplicationStopping callback registered in <see cref="StartedAsync"/>, after
/// the connection manager's (it is created when the hub is mapped): token callbacks run last-registered first.
/// </para>
/// </summary>
internal sealed class ShutdownNotifier(
    IHubContext<JobsHub> hub, WatchRegistry watches, IHostApplicationLifetime lifetime, ILogger<ShutdownNotifier> logger) : IHostedLifecycleService, IDisposable
{
    public const string Method = "server-shutdown";

    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FlushGrace = TimeSpan.FromMilliseconds(250);

    private CancellationTokenRegistration _onStopping;
    private int _notified;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        // Blocks the signal's thread for at most SendTimeout + FlushGrace: the connections close right after it returns.
        _onStopping = lifetime.ApplicationStopping.Register(() => NotifyAsync(CancellationToken.None).GetAwaiter().GetResult());
        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => NotifyAsync(cancellationToken);

    public void Dispose() => _onStopping.Dispose();

    private async Task NotifyAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _notified, 1) == 1)
        {
            return;
        }

        var clients = watches.Connections;
        if (clients == 0)
        {
            return;
        }

        try
        {
            // SendAsync returns once the message is written and flushed into every connection's transport pipe.
            await hub.Clients.All.SendAsync(Method, new JsonObject { ["message"] = "The server is shutting down; reconnect in a moment." }, cancellationToken)
                .WaitAsync(SendTimeout, cancellationToken);

            // The WebSocket transport copies the pipe to the socket on its own loop: give it a moment before the close.
            await Task.Delay(FlushGrace, cancellationToken);
            logger.LogInformation("Told {Clients} hub clients the server is shutting down", clients);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException)
        {
            logger.LogWarning(e, "Not every one of {Clients} hub clients could be told the server stops", clients);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
