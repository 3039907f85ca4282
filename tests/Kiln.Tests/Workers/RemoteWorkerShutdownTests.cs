using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Security;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;
using Npgsql;

namespace Kiln.Tests.Workers;

public sealed class RemoteWorkerShutdownTests
{
    [Fact]
    public async Task A_stopping_server_lets_a_remote_job_finish_within_the_grace_period_and_gives_back_one_that_cannot()
    {
        await using var database = await TestDatabase.CreateAsync();
        // The grace period has to outlast the quick job's remaining 1.2 s even on a busy CI machine (2 s, and once 8 s,
        // were not enough there); the slow job needs 60 s, so it is given back either way.
        await using var server = await KilnServer.StartAsync(
            new Dictionary<string, string?> { [TestKinds.Setting] = "true", ["Kiln:Workers:ShutdownTimeoutSeconds"] = "15" }, database: database);
        var token = (await server.Get<ApiKeyStore>().CreateAsync("shutdown", Roles.Worker, CancellationToken.None)).Secret;
        await using var worker = WorkerProcess.Start(server.BaseAddress, token, "survivor", slots: 2);
        var quick = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = new JsonObject { ["durationMs"] = 1200, ["steps"] = 12 } };
        var slow = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = new JsonObject { ["durationMs"] = 60_000, ["steps"] = 600 } };
        await server.Get<JobStore>().EnqueueAsync([quick, slow], CancellationToken.None);
        // "running" is written when the server grants the lease; progress shows the worker process really runs the
        // job (a cold worker process on a loaded machine can take seconds to get there).
        foreach (var id in new[] { quick.Id, slow.Id })
        {
            await WaitForProgressAsync(database, id);
        }

        await server.StopAsync();

        Assert.Equal(("completed", 1), await StateAsync(database, quick.Id));
        Assert.Equal(("queued", 0), await StateAsync(database, slow.Id));
        await worker.WaitForOutputAsync($"Stopping job {slow.Id}: shutdown");
        Directory.Delete(server.DataDirectory, recursive: true);
    }

    private static Task WaitForProgressAsync(TestDatabase database, Guid id) =>
        Poll.UntilAsync(
            async () =>
            {
                await using var conn = new NpgsqlConnection(database.ConnectionString);
                await conn.OpenAsync();
                await using var cmd = new NpgsqlCommand("select state = 'running' and progress > 0 from jobs where id = @id", conn);
                cmd.Parameters.AddWithValue("id", id);
                return (bool)(await cmd.ExecuteScalarAsync())!;
            },
            $"job {id} to report progress from the worker");

    private static async Task<(string State, int Attempts)> StateAsync(TestDatabase database, Guid id)
    {
        await using var conn = new NpgsqlConnection(database.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select state, attempts from jobs where id = @id", conn);
        cmd.Parameters.AddWithValue("id", id);
        await using var r = await cmd.ExecuteReaderAsync();
        await r.ReadAsync();
        return (r.GetString(0), r.GetInt32(1));
    }
}
