using Kiln.Data;
using Kiln.Jobs;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// Kiln's pool does not reset returned connections (<c>No Reset On Close</c>: the reset cost as much as a round trip),
/// so the LISTEN connection must stop listening before it goes back: otherwise whoever borrows it next keeps
/// receiving the node's notifications. A pool of one connection makes the next borrower get exactly that connection.
/// </summary>
public sealed class NotifierPoolTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private NpgsqlDataSource _dataSource = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        var csb = new NpgsqlConnectionStringBuilder(_database.ConnectionString) { MaxPoolSize = 1 };
        _dataSource = DataExtensions.CreateDataSource(csb.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public void The_data_source_does_not_reset_returned_connections()
    {
        Assert.True(new NpgsqlConnectionStringBuilder(_dataSource.ConnectionString).NoResetOnClose);
    }

    [Fact]
    public async Task The_listen_connection_goes_back_to_the_pool_listening_to_nothing()
    {
        var notifier = new QueueNotifier(_dataSource, new QueueWakeups(), NullLogger<QueueNotifier>.Instance);
        await notifier.StartAsync(CancellationToken.None);
        await notifier.Listening.WaitAsync(TimeSpan.FromSeconds(30));
        var listener = await ListenerPidAsync();
        await notifier.StopAsync(CancellationToken.None);
        notifier.Dispose();

        await using var conn = await _dataSource.OpenConnectionAsync();
        await using var cmd = new NpgsqlCommand("select pg_backend_pid(), array(select pg_listening_channels())", conn);
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        Assert.Equal(listener, r.GetInt32(0));
        Assert.Empty(r.GetFieldValue<string[]>(1));
    }

    /// <summary>The backend that ran the notifier's LISTENs, seen from a connection outside the pool.</summary>
    private async Task<int> ListenerPidAsync()
    {
        var csb = new NpgsqlConnectionStringBuilder(_database.ConnectionString) { Pooling = false };
        await using var conn = new NpgsqlConnection(csb.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query like 'listen %'", conn);
        return (int)(await cmd.ExecuteScalarAsync())!;
    }
}
