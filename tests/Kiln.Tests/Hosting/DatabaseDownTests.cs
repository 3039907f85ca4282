using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Hosting;

/// <summary>
/// The server reaches PostgreSQL through a TCP relay the test controls; stopping the relay is PostgreSQL going away
/// (refused connections, broken pooled ones) without touching the shared test cluster.
/// </summary>
public sealed class DatabaseDownTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private TcpRelay _relay = null!;
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        var target = new NpgsqlConnectionStringBuilder(_database.ConnectionString);
        _relay = TcpRelay.Start(target.Host!, target.Port);
        var relayed = new NpgsqlConnectionStringBuilder(_database.ConnectionString) { Host = "127.0.0.1", Port = _relay.Port, Timeout = 3 };
        _server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["ConnectionStrings:Kiln"] = relayed.ConnectionString }, database: _database);
    }

    public async ValueTask DisposeAsync()
    {
        _relay.Resume();
        await _server.DisposeAsync();
        _relay.Dispose();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task While_the_database_is_down_requests_answer_503_with_retry_after_and_recover_after()
    {
        using (var up = await _server.Admin.GetAsync("/api/jobs", TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        }

        _relay.Stop();
        foreach (var url in new[] { "/api/jobs", "/api/assets", $"/api/assets/{Guid.NewGuid()}" })
        {
            using var down = await _server.Admin.GetAsync(url, TestContext.Current.CancellationToken);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(5), down.Headers.RetryAfter?.Delta);
            var problem = await down.Content.ReadFromJsonAsync<JsonObject>(TestContext.Current.CancellationToken);
            Assert.Equal("database.unavailable", problem!["errorCode"]!.GetValue<string>());
        }

        _relay.Resume();
        await Poll.UntilAsync(
            async () =>
            {
                using var again = await _server.Admin.GetAsync("/api/jobs", TestContext.Current.CancellationToken);
                return again.StatusCode == HttpStatusCode.OK;
            },
            "requests to succeed once the database is back",
            60);
    }

    /// <summary>Relays TCP to a target; Stop refuses new connections and cuts the open ones.</summary>
    private sealed class TcpRelay : IDisposable
    {
        private readonly string _host;
        private readonly int _targetPort;
        private readonly List<TcpClient> _open = [];
        private readonly Lock _gate = new();
        private TcpListener _listener;
        private volatile bool _stopped;

        private TcpRelay(string host, int targetPort)
        {
            _host = host;
            _targetPort = targetPort;
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _ = AcceptLoopAsync(_listener);
        }

        public int Port { get; }

        public static TcpRelay Start(string host, int port) => new(host, port);

        public void Stop()
        {
            _stopped = true;
            _listener.Stop();
            lock (_gate)
            {
                foreach (var client in _open)
                {
                    client.Dispose();
                }

                _open.Clear();
            }
        }

        public void Resume()
        {
            if (!_stopped)
            {
                return;
            }

            _stopped = false;
            _listener = new TcpListener(IPAddress.Loopback, Port);
            _listener.Start();
            _ = AcceptLoopAsync(_listener);
        }

        public void Dispose() => Stop();

        private async Task AcceptLoopAsync(TcpListener listener)
        {
            while (!_stopped)
            {
                TcpClient inbound;
                try
                {
                    inbound = await listener.AcceptTcpClientAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                var outbound = new TcpClient();
                try
                {
                    await outbound.ConnectAsync(_host, _targetPort);
                }
                catch (SocketException)
                {
                    inbound.Dispose();
                    outbound.Dispose();
                    continue;
                }

                lock (_gate)
                {
                    _open.Add(inbound);
                    _open.Add(outbound);
                }

                _ = PumpAsync(inbound, outbound);
                _ = PumpAsync(outbound, inbound);
            }
        }

        private static async Task PumpAsync(TcpClient from, TcpClient to)
        {
            try
            {
                await from.GetStream().CopyToAsync(to.GetStream());
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
            {
            }
            finally
            {
                from.Dispose();
                to.Dispose();
            }
        }
    }
}
