using Kiln.Tests.Infrastructure;

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
}
