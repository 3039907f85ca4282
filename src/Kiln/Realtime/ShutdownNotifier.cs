using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace Kiln.Realtime;

/// <summary>
/// Tells every hub client the server is stopping (<c>server-shutdown</c>) before its connection closes, so a
/// dashboard can say so and reconnect elsewhere instead of showing a dead connection.
/// <para>
/// When: SignalR's connection manager closes every connection from its own ApplicationStopping callback, and the
/// host fires ApplicationStopping before it stops any hosted service. Token callbacks run last-registered first, so
/// the notice goes out from a callback registered in <see cref="StartAsync"/>, after the connection manager's (it is
/// created when the hub is mapped), while Kestrel still serves the connections.
/// </para>
/// <para>
/// How: a message sent to a connection is only written to its transport's pipe; the connection manager's close
/// cancels the WebSocket send loop, which drops whatever it has not put on the socket yet (the notice reached 1
/// client in 3 on a loaded machine when it was sent that way, even with a pause before the close). So the notice is
/// an invocation each client answers: SignalR clients (JavaScript and .NET, version 7 on) answer every invocation,
/// with "no result" when the handler returns nothing, and an answer proves the notice arrived. The close waits for
/// every answer, or <see cref="RealtimeOptions.ShutdownNoticeSeconds"/>.
/// </para>
/// </summary>
internal sealed class ShutdownNotifier(
    IHubContext<JobsHub> hub,
    WatchRegistry watches,
    IHostApplicationLifetime lifetime,
    IOptions<RealtimeOptions> options,
    ILogger<ShutdownNotifier> logger) : IHostedService, IDisposable
{
    public const string Method = "server-shutdown";

    private CancellationTokenRegistration _onStopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Blocks whoever stops the host (the signal's thread, or StopAsync's caller) for at most ShutdownNoticeSeconds:
        // the connections close as soon as this callback returns.
        _onStopping = lifetime.ApplicationStopping.Register(() => NotifyAsync().GetAwaiter().GetResult());
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _onStopping.Dispose();

    private async Task NotifyAsync()
    {
        var connections = watches.Connections;
        if (connections.Count == 0)
        {
            return;
        }

        var timeout = TimeSpan.FromSeconds(options.Value.ShutdownNoticeSeconds);
        using var deadline = new CancellationTokenSource(timeout);
        var answers = await Task.WhenAll(connections.Select(id => TellAsync(id, deadline.Token)));
        var told = answers.Count(a => a);
        if (told == answers.Length)
        {
            logger.LogInformation("Told {Clients} hub clients the server is shutting down", told);
        }
        else
        {
            logger.LogWarning(
                "{Missing} of {Clients} hub clients did not acknowledge server-shutdown within {Timeout} (closed, or too slow); they may not have received it",
                answers.Length - told, answers.Length, timeout);
        }
    }

    /// <summary>True when the client answered, i.e. the notice reached it.</summary>
    private async Task<bool> TellAsync(string connectionId, CancellationToken deadline)
    {
        try
        {
            await hub.Clients.Client(connectionId).InvokeAsync<JsonElement?>(
                Method, new JsonObject { ["message"] = "The server is shutting down; reconnect in a moment." }, deadline);
            return true;
        }
        catch (HubException)
        {
            // The client's answer was an error ("didn't provide a result" from a handler that returns nothing): it still
            // received the notice.
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // No answer in time, or the connection closed first (IOException from SignalR).
            logger.LogDebug(e, "Hub connection {ConnectionId} did not acknowledge server-shutdown", connectionId);
            return false;
        }
    }
}
