using System.Diagnostics;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Realtime;

/// <summary>
/// SIGTERM, as systemd or docker stop sends it: the host's ApplicationStopping fires first and SignalR closes every
/// connection on it, so the notice must go out before that, to every client.
/// </summary>
public sealed class HubShutdownSignalTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-sigterm-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact(Skip = "Flaky: in 1 of several runs no client heard server-shutdown before the socket closed (issue 9 shutdown item still open)")]
    public async Task Every_connected_hub_client_hears_server_shutdown_on_sigterm()
    {
        var (server, address) = await KilnProcess.ServeAsync(new Dictionary<string, string>
        {
            ["ConnectionStrings__Kiln"] = _database.ConnectionString,
            ["Kiln__DataDirectory"] = _data,
        });
        await using (server)
        {
            // The first start prints the admin key once (on stdout, or stderr in later versions).
            string? key = null;
            await Kiln.Tests.Queue.Poll.UntilAsync(
                () => Task.FromResult((key = server.StandardOutput.Concat(server.StandardError).FirstOrDefault(l => l.TrimStart().StartsWith("kiln_", StringComparison.Ordinal))?.Trim()) is not null),
                "the admin key to be printed",
                60);
            var clients = new List<HubTestClient>();
            try
            {
                for (var i = 0; i < 5; i++)
                {
                    var client = await HubTestClient.ConnectAsync(address, key!);
                    clients.Add(client);

                    // One round trip: the handshake answer comes before the connection is registered for broadcasts.
                    await client.InvokeAsync("join-all");
                }

                using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                {
                    await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
                }

                foreach (var client in clients)
                {
                    var shutdown = await client.WaitForAsync("server-shutdown", timeout: TimeSpan.FromSeconds(60));
                    Assert.Contains("shutting down", shutdown.Payload!["message"]!.GetValue<string>(), StringComparison.Ordinal);
                }
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
}
