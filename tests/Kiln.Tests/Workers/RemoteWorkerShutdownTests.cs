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
        // The grace period has to outlast the quick job's remaining 1.2 s plus its upload even on a busy CI machine
        // (2 s once was not enough); the slow job needs 60 s, so it is given back either way.
        await using var server = await KilnServer.StartAsync(
            new Dictionary<string, string?> { [TestKinds.Setting] = "true", ["Kiln:Workers:ShutdownTimeoutSeconds"] = "8" }, database: database);
        var token = (await server.Get<ApiKeyStore>().CreateAsync("shutdown", Roles.Worker, CancellationToken.None)).Secret;
        await using var worker = WorkerProcess.Start(server.BaseAddress, token, "survivor", slots: 2);
        var quick = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = new JsonObject { ["durationMs"] = 1200, ["steps"] = 12 } };
        var slow = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = new JsonObject { ["durationMs"] = 60_000, ["steps"] = 600 } };
        await server.Get<JobStore>().EnqueueAsync([quick, slow], CancellationToken.None);
        foreach (var id in new[] { quick.Id, slow.Id })
        {
            await WaitForAsync(database, id, "running");
        }

        await server.StopAsync();

        Assert.Equal(("completed", 1), await StateAsync(database, quick.Id));
        Assert.Equal(("queued", 0), await StateAsync(database, slow.Id));
        await worker.WaitForOutputAsync($"Stopping job {slow.Id}: shutdown", TimeSpan.FromSeconds(5));
        Directory.Delete(server.DataDirectory, recursive: true);
    }

    private static async Task WaitForAsync(TestDatabase database, Guid id, string state)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await StateAsync(database, id)).State != state)
        {
            Assert.True(DateTime.UtcNow < deadline, $"job {id} never became {state}");
            await Task.Delay(50);
        }
    }

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
