using System.Text.Json.Nodes;
using Kiln.Realtime;
using Kiln.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Hosting;

namespace Kiln.Tests.Realtime;

public sealed class HubShutdownTests
{
    private const int Clients = 20;

    [Fact]
    public async Task Every_connected_hub_client_has_heard_server_shutdown_when_the_server_has_stopped()
    {
        // Generous: on a loaded machine twenty answers can take a while, and the test is about every one arriving.
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Realtime:ShutdownNoticeSeconds"] = "120" });
        var clients = new List<RecordingHubClient>();
        try
        {
            for (var i = 0; i < Clients; i++)
            {
                var client = await RecordingHubClient.ConnectAsync(server.BaseAddress, server.AdminKey);
                clients.Add(client);

                // One round trip: the handshake is answered before the hub has registered the connection.
                await client.InvokeAsync("join-all");
            }

            await server.StopAsync();

            // No waiting: the server held every connection open until its client had answered the notice, and a client
            // answers only after its handler ran.
            Assert.All(clients, client =>
            {
                var shutdown = Assert.Single(client.Events, e => e.Target == "server-shutdown");
                Assert.Contains("shutting down", shutdown.Payload!["message"]!.GetValue<string>(), StringComparison.Ordinal);
            });
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_client_slow_to_read_still_hears_server_shutdown_before_its_connection_closes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Realtime:ShutdownNoticeSeconds"] = "120" });
        using var reader = await SlowHubReader.ConnectAsync(server.BaseAddress, server.AdminKey, ct);

        // 20 MB, more than the socket buffers hold: the server's writes to this client back up until it reads, so a
        // notice merely written to the connection would still be queued when the connection closes.
        var hub = server.Get<IHubContext<JobsHub>>();
        var padding = new JsonObject { ["pad"] = new string('x', 50_000) };
        var flood = Enumerable.Range(0, 400).Select(_ => hub.Clients.All.SendAsync("job-progress", padding, CancellationToken.None)).ToList();

        // On another thread: the stop blocks until every client has answered, and this one answers only below.
        var stopping = Task.Run(server.StopAsync, CancellationToken.None);
        var lifetime = server.Get<IHostApplicationLifetime>();
        await Poll.UntilAsync(() => Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested), "the shutdown to begin", 60);

        // The client's slowness itself, not a wait for a condition: it reads nothing for a while after the shutdown began.
        await Task.Delay(TimeSpan.FromSeconds(3), ct);
        var targets = await reader.ReadToCloseAsync(ct);
        await stopping;
        await Task.WhenAll(flood).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ContinueOnCapturedContext);

        Assert.Contains(ShutdownNotifier.Method, targets);
    }
}
