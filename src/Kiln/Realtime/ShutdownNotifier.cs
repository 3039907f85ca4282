using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR;

namespace Kiln.Realtime;

/// <summary>
/// Tells every hub client the server is stopping (<c>server-shutdown</c>) before anything else stops, so a
/// dashboard can say so and reconnect elsewhere instead of showing a dead connection.
/// </summary>
internal sealed class ShutdownNotifier(IHubContext<JobsHub> hub, WatchRegistry watches, ILogger<ShutdownNotifier> logger) : IHostedLifecycleService
{
    public const string Method = "server-shutdown";

    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan FlushGrace = TimeSpan.FromMilliseconds(250);

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (watches.Connections == 0)
        {
            return;
        }

        try
        {
            await hub.Clients.All.SendAsync(Method, new JsonObject { ["message"] = "The server is shutting down; reconnect in a moment." }, cancellationToken)
                .WaitAsync(SendTimeout, cancellationToken);

            // The send only queues on each connection; SignalR drops its connections as soon as stopping is signalled,
            // so give the transports a moment to put the message on the wire.
            await Task.Delay(FlushGrace, cancellationToken);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException or IOException)
        {
            logger.LogWarning(e, "Not every hub client could be told the server stops");
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
