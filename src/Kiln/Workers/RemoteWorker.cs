using System.Net;
using System.Net.WebSockets;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Processing;

namespace Kiln.Workers;

/// <summary>What <c>kiln worker</c> was told on its command line.</summary>
internal sealed record RemoteWorkerSettings(Uri Server, string Token, string Name, int Slots, string WorkDirectory, TimeSpan ShutdownTimeout);

/// <summary>The worker's token was refused, or its hello was: retrying cannot help.</summary>
internal sealed class WorkerRefusedException(string message) : Exception(message);

/// <summary>
/// <c>kiln worker</c>: connects to the server's WebSocket, announces its kinds and slots, runs the leases it is
/// pushed and reports on them; reconnects with backoff when the connection drops (running jobs are abandoned then:
/// the server has put them back in the queue). On stop it drains: asks for no more leases, lets running jobs finish
/// for the shutdown timeout, gives back the rest.
/// </summary>
internal sealed class RemoteWorker(RemoteWorkerSettings settings, IReadOnlyDictionary<string, IJobHandler> handlers, ILogger logger)
{
    private static readonly string Version = typeof(RemoteWorker).Assembly.GetName().Version?.ToString() ?? "0";

    private readonly AttemptRunner _runner = new(handlers, settings.WorkDirectory, "this worker", logger);

    /// <summary>Runs until stopped; the exit code is 0 after a clean stop, 3 when the server refused the worker.</summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        using var http = new HttpClient { BaseAddress = settings.Server, Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", settings.Token);
        var backoff = TimeSpan.FromMilliseconds(250);
        while (!stop.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            socket.Options.SetRequestHeader("Authorization", "Bearer " + settings.Token);
            socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
            socket.Options.CollectHttpResponseDetails = true;
            try
            {
                await socket.ConnectAsync(ConnectUri(), stop);
                backoff = TimeSpan.FromMilliseconds(250);
                if (await RunSessionAsync(socket, http, stop))
                {
                    return 0;
                }
            }
            catch (WebSocketException) when (socket.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                logger.LogError("The server refused the worker token ({Status}); it may have been revoked", (int)socket.HttpStatusCode);
                return 3;
            }
            catch (WorkerRefusedException e)
            {
                logger.LogError("The server refused this worker: {Reason}", e.Message);
                return 3;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return 0;
            }
            catch (Exception e) when (e is WebSocketException or HttpRequestException or IOException)
            {
                logger.LogWarning("Connection to {Server} failed or dropped: {Reason}; retrying in {Delay}", settings.Server, e.Message, backoff);
            }

            await Task.Delay(backoff, stop).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
        }

        return 0;
    }

    private Uri ConnectUri()
    {
        var builder = new UriBuilder(new Uri(settings.Server, WorkerEndpoints.Prefix + "/connect"));
        builder.Scheme = builder.Scheme == Uri.UriSchemeHttps ? "wss" : "ws";
        return builder.Uri;
    }

    /// <summary>One connection; true when it ended because the worker was stopped and drained.</summary>
    private async Task<bool> RunSessionAsync(ClientWebSocket ws, HttpClient http, CancellationToken stop)
    {
        var socket = new MessageSocket(ws, 64 * 1024 * 1024);
        using var session = new CancellationTokenSource();
        var sender = Task.Run(() => socket.RunSenderAsync(session.Token), CancellationToken.None);
        try
        {
            socket.Post(new HelloMessage(WorkerProtocol.Hello, settings.Name, Version, [.. handlers.Keys], settings.Slots, WorkerProtocol.Version));
            var welcome = await ReceiveWelcomeAsync(socket, stop);
            logger.LogInformation("Connected to {Server} as {WorkerId}, serving {Kinds}", settings.Server, welcome.WorkerId, string.Join(", ", welcome.Kinds));
            var heartbeat = Task.Run(() => HeartbeatAsync(socket, TimeSpan.FromSeconds(welcome.HeartbeatSeconds), session.Token), CancellationToken.None);
            using var onStop = stop.Register(() => _ = DrainAsync(socket));
            await ReceiveLoopAsync(socket, http, session.Token);
            await session.CancelAsync();
            await heartbeat.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            return stop.IsCancellationRequested;
        }
        finally
        {
            // Whatever still runs lost its lease with the connection; its results would be refused.
            await _runner.StopAllAsync(JobStopReason.LeaseLost);

            // Let a queued close go out; on a dead connection the send fails at once.
            socket.PostClose(WebSocketCloseStatus.NormalClosure, "bye");
            await sender.WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await session.CancelAsync();
            await sender.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private static async Task<WelcomeMessage> ReceiveWelcomeAsync(MessageSocket socket, CancellationToken stop)
    {
        var (outcome, bytes) = await socket.ReceiveAsync(stop);
        if (outcome != ReceiveOutcome.Message)
        {
            throw new WebSocketException("The server closed the connection before welcoming the worker.");
        }

        var (document, type, _) = WorkerProtocol.Read(bytes);
        using (document)
        {
            if (type == WorkerProtocol.Welcome && WorkerProtocol.Bind<WelcomeMessage>(document!.RootElement) is { } welcome)
            {
                return welcome;
            }

            var rejected = type == WorkerProtocol.Rejected ? WorkerProtocol.Bind<RejectedMessage>(document!.RootElement) : null;
            throw new WorkerRefusedException(rejected is null ? $"unexpected first message '{type}'" : $"{rejected.Code}: {rejected.Message}");
        }
    }

    private async Task ReceiveLoopAsync(MessageSocket socket, HttpClient http, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var (outcome, bytes) = await socket.ReceiveAsync(ct);
            if (outcome == ReceiveOutcome.Closed)
            {
                logger.LogInformation("The server closed the connection: {Reason}", socket.CloseDescription);
                socket.PostClose(WebSocketCloseStatus.NormalClosure, "bye");
                return;
            }

            if (outcome != ReceiveOutcome.Message)
            {
                continue;
            }

            var (document, type, _) = WorkerProtocol.Read(bytes);
            if (document is null)
            {
                continue;
            }

            using (document)
            {
                Handle(type!, document.RootElement, socket, http);
            }
        }
    }

    private void Handle(string type, System.Text.Json.JsonElement message, MessageSocket socket, HttpClient http)
    {
        switch (type)
        {
            case WorkerProtocol.Lease when WorkerProtocol.Bind<LeaseMessage>(message) is { } lease:
                _runner.Start(RemoteAttemptTransport.ToJobLease(lease), new RemoteAttemptTransport(lease, socket, http, logger));
                break;
            case WorkerProtocol.Cancel when WorkerProtocol.Bind<CancelMessage>(message) is { } cancel:
                var reason = cancel.Reason switch
                {
                    "cancelled" => JobStopReason.Cancelled,
                    "paused" => JobStopReason.Paused,
                    "stalled" => JobStopReason.Stalled,
                    _ => JobStopReason.LeaseLost,
                };
                if (_runner.Stop(cancel.JobId, cancel.LeaseId, reason))
                {
                    logger.LogInformation("Stopping job {JobId}: {Reason}", cancel.JobId, cancel.Reason);
                }

                break;
            case WorkerProtocol.Rejected when WorkerProtocol.Bind<RejectedMessage>(message) is { } rejected:
                logger.LogWarning("The server rejected a {Of} message for {JobId}: {Code} {Message}", rejected.Of, rejected.JobId, rejected.Code, rejected.Message);
                break;
            case WorkerProtocol.Shutdown:
                logger.LogInformation("The server is shutting down; running jobs may finish, then the worker reconnects");
                break;
            case WorkerProtocol.Lease when WorkerProtocol.Bind<ReleaseMessage>(message) is { } unreadable:
                // A lease this build cannot read (a newer server?): hand it back as failed rather than sit on it.
                logger.LogError("Could not read the lease of job {JobId}; reporting it failed", unreadable.JobId);
                socket.Post(new FailMessage(WorkerProtocol.Fail, unreadable.JobId, unreadable.LeaseId, "worker_protocol_error", "The worker could not read the lease."));
                break;
            case WorkerProtocol.Ack:
                break;
            default:
                logger.LogWarning("Ignoring a {Type} message the worker does not understand", type);
                break;
        }
    }

    private static async Task HeartbeatAsync(MessageSocket socket, TimeSpan every, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(every);
        while (await TimerTicks.NextAsync(timer, ct))
        {
            socket.Post(new HeartbeatMessage(WorkerProtocol.Heartbeat));
        }
    }

    /// <summary>On stop: no more leases, running jobs get the shutdown timeout, the rest are given back, then the connection closes.</summary>
    private async Task DrainAsync(MessageSocket socket)
    {
        logger.LogInformation("Stopping: finishing {Count} running jobs for up to {Timeout}", _runner.Count, settings.ShutdownTimeout);
        socket.Post(new DrainMessage(WorkerProtocol.Drain));
        await _runner.DrainAsync(settings.ShutdownTimeout, CancellationToken.None);
        socket.PostClose(WebSocketCloseStatus.NormalClosure, "worker stopping");
    }
}
