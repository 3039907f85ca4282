using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Observability;

public sealed class HealthTests
{
    [Fact]
    public async Task Live_and_ready_answer_200_when_database_disk_and_tools_are_fine()
    {
        await using var server = await KilnServer.StartAsync();
        using var anonymous = server.CreateClient();

        using var live = await anonymous.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync());

        using var ready = await anonymous.GetAsync("/health/ready");
        var body = (await ready.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(ready.StatusCode == HttpStatusCode.OK, body.ToJsonString());
        Assert.Equal("Healthy", body["status"]!.GetValue<string>());
        foreach (var check in new[] { "database", "disk", "tools", "workers" })
        {
            Assert.Equal("Healthy", body["checks"]![check]!["status"]!.GetValue<string>());
        }

        Assert.Equal("found", body["checks"]!["tools"]!["data"]!["ffmpeg"]!.GetValue<string>());
        Assert.Equal("found", body["checks"]!["tools"]!["data"]!["libvips"]!.GetValue<string>());
        Assert.True(body["checks"]!["disk"]!["data"]!["freeBytes"]!.GetValue<long>() > 0);
        Assert.True(body["checks"]!["workers"]!["data"]!["inProcess"]!.GetValue<bool>());
        Assert.Equal(0, body["checks"]!["workers"]!["data"]!["remoteWorkers"]!.GetValue<int>());
    }

    [Fact]
    public async Task Without_in_process_workers_ready_is_degraded_until_a_remote_worker_connects()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Workers:Enabled"] = "false" });
        using var anonymous = server.CreateClient();

        var body = (await anonymous.GetFromJsonAsync<JsonObject>("/health/ready"))!;
        Assert.Equal("Degraded", body["checks"]!["workers"]!["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/ready")).StatusCode);

        var token = (await server.Get<Kiln.Security.ApiKeyStore>().CreateAsync("health", Kiln.Security.Roles.Worker, CancellationToken.None)).Secret;
        await using var worker = Kiln.Tests.Workers.WorkerProcess.Start(server.BaseAddress, token, "health-worker");
        body = await Poll.UntilAsync(
            async () => (await anonymous.GetFromJsonAsync<JsonObject>("/health/ready"))!,
            b => b["checks"]!["workers"]!["status"]!.GetValue<string>() == "Healthy",
            "the remote worker to show in /health/ready");

        Assert.Equal(1, body["checks"]!["workers"]!["data"]!["remoteWorkers"]!.GetValue<int>());
    }

    [Fact]
    public async Task Ready_answers_503_when_free_disk_space_is_below_the_minimum_and_live_stays_200()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:MinFreeDiskBytes"] = long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var anonymous = server.CreateClient();

        using var ready = await anonymous.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = (await ready.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("Unhealthy", body["status"]!.GetValue<string>());
        Assert.Equal("Unhealthy", body["checks"]!["disk"]!["status"]!.GetValue<string>());
        Assert.Contains("bytes free", body["checks"]!["disk"]!["description"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal("Healthy", body["checks"]!["database"]!["status"]!.GetValue<string>());

        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task Ready_answers_503_when_the_database_is_gone()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await KilnServer.StartAsync(database: database);
        using var anonymous = server.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/ready")).StatusCode);

        await using (var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestDatabase.ServerConnectionString) { Database = "postgres", Pooling = false }.ConnectionString))
        {
            await conn.OpenAsync();
            await using var drop = new NpgsqlCommand($"drop database {database.Name} with (force)", conn);
            await drop.ExecuteNonQueryAsync();
        }

        using var ready = await anonymous.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = (await ready.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("Unhealthy", body["checks"]!["database"]!["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
        await server.StopAsync();
        Directory.Delete(server.DataDirectory, recursive: true);
    }
}
