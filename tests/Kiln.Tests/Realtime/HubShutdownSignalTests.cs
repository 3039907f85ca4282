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

    [Fact]
    public async Task Every_connected_hub_client_hears_server_shutdown_on_sigterm()
    {
        var (server, address) = await KilnProcess.ServeAsync(new Dictionary<string, string>
        {
            ["ConnectionStrings__Kiln"] = _database.ConnectionString,
            ["Kiln__DataDirectory"] = _data,
            ["Kiln__Realtime__ShutdownNoticeSeconds"] = "120",
        });
        await using (server)
        {
            // The first start prints the admin key once (on stdout, or stderr in later versions).
            string? key = null;
            await Poll.UntilAsync(
                () => Task.FromResult((key = server.StandardOutput.Concat(server.StandardError).FirstOrDefault(l => l.TrimStart().StartsWith("kiln_", StringComparison.Ordinal))?.Trim()) is not null),
                "the admin key to be printed",
                60);
            var clients = new List<RecordingHubClient>();
            try
            {
                for (var i = 0; i < 5; i++)
                {
                    var client = await RecordingHubClient.ConnectAsync(address, key!);
                    clients.Add(client);

                    // One round trip: the handshake answer comes before the connection is registered for broadcasts.
                    await client.InvokeAsync("join-all");
                }

                using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                {
                    await kill.WaitForExitAsync(TestContext.Current.CancellationToken);
                }

                await Poll.UntilAsync(() => Task.FromResult(server.HasExited), "the server to exit", 120);

                // No waiting: the server held each connection open until its client had answered the notice, and a client
                // answers only after its handler ran.
                Assert.All(clients, client =>
                {
                    var shutdown = Assert.Single(client.Events, e => e.Target == "server-shutdown");
                    Assert.Contains("shutting down", shutdown.Payload!["message"]!.GetValue<string>(), StringComparison.Ordinal);
                });
                Assert.Contains(server.StandardOutput.Concat(server.StandardError), l => l.Contains($"Told {clients.Count} hub clients the server is shutting down", StringComparison.Ordinal));
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
