using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;
using Kiln.Tests.Queue;
using Npgsql;

namespace Kiln.Tests.Api;

public sealed class AssetSnapshotTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _server = await KilnServer.StartAsync(database: _database);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task Asset_details_read_the_asset_and_its_jobs_from_one_snapshot()
    {
        var ct = TestContext.Current.CancellationToken;
        var body = await _server.UploadAsync([("before.bin", [1, 2, 3, 4])], new JsonObject { ["jobs"] = new JsonArray() });
        var assetId = body["assets"]![0]!["id"]!.GetValue<Guid>();
        var probeId = body["assets"]![0]!["jobs"]![0]!["id"]!.GetValue<Guid>();
        var probe = await _server.WaitForJobAsync(probeId, ["completed", "failed"], TimeSpan.FromSeconds(60));
        var priority = probe["priority"]!.GetValue<int>();

        // Hold the jobs table so the request stops between its reads, then change the asset and its job meanwhile.
        await using var conn = new NpgsqlConnection(_database.ConnectionString);
        await conn.OpenAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await Exec(conn, "lock table jobs in access exclusive mode");
        var details = _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}", ct);

        // Watched from another connection: inside a transaction pg_stat_activity is a snapshot that never changes.
        await using var watcher = new NpgsqlConnection(_database.ConnectionString);
        await watcher.OpenAsync(ct);
        await Poll.UntilAsync(
            async () =>
            {
                await using var waiting = new NpgsqlCommand("select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%from jobs where asset_id%'", watcher);
                return (long)(await waiting.ExecuteScalarAsync(ct))! > 0;
            },
            "the details request to wait on the jobs table",
            60);
        await Exec(conn, $"update assets set original_name = 'after.bin' where id = '{assetId}'");
        await Exec(conn, $"update jobs set priority = priority + 7 where id = '{probeId}'");
        await tx.CommitAsync(ct);

        var seen = (await details)!;
        var name = seen["asset"]!["originalName"]!.GetValue<string>();
        var seenPriority = seen["jobs"]![0]!["priority"]!.GetValue<int>();

        // Either both changes or neither; never the old asset with the new job.
        Assert.Equal(name == "after.bin" ? priority + 7 : priority, seenPriority);
    }

    private static async Task Exec(NpgsqlConnection conn, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }
}
