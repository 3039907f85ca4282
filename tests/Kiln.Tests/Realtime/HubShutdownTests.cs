using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Realtime;

public sealed class HubShutdownTests
{
    [Fact]
    public async Task Hub_clients_are_told_before_the_server_stops()
    {
        await using var server = await KilnServer.StartAsync();
        await using var hub = await HubTestClient.ConnectAsync(server.BaseAddress, server.AdminKey);

        // One round trip: the handshake answer comes before the connection is registered for broadcasts.
        await hub.InvokeAsync("join-all");

        await server.StopAsync();

        var shutdown = await hub.WaitForAsync("server-shutdown", timeout: TimeSpan.FromSeconds(5));
        Assert.Contains("shutting down", shutdown.Payload!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
