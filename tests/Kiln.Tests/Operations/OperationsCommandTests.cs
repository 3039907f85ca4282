using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Operations;

/// <summary><c>kiln health</c> and <c>kiln cleanup</c>: their exit codes are what scripts and monitors read.</summary>
public sealed class OperationsCommandTests
{
    [Fact]
    public async Task Health_asks_a_running_server_and_says_when_it_cannot_be_reached()
    {
        await using var server = await TestJobs.StartServerAsync();
        var ready = await KilnProcess.RunAsync(new Dictionary<string, string>(), "health", "--url", server.BaseAddress.ToString());
        Assert.True(ready.ExitCode == 0, ready.Stderr);
        Assert.Equal("Healthy", JsonNode.Parse(ready.Stdout)!["checks"]!["database"]!["status"]!.GetValue<string>());

        var live = await KilnProcess.RunAsync(new Dictionary<string, string>(), "health", "--url", server.BaseAddress.ToString(), "--live");
        Assert.Equal(0, live.ExitCode);
        Assert.Equal("Healthy", live.Stdout.Trim());

        var down = await KilnProcess.RunAsync(new Dictionary<string, string>(), "health", "--url", $"http://127.0.0.1:{ClosedPort()}");
        Assert.Equal(3, down.ExitCode);
        Assert.Contains("cannot be reached", down.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_without_a_server_checks_the_database_disk_and_tools_and_fails_when_one_is_unhealthy()
    {
        await using var database = await TestDatabase.CreateAsync();
        var data = Directory.CreateTempSubdirectory("kiln-health-").FullName;
        try
        {
            var env = new Dictionary<string, string> { ["ConnectionStrings__Kiln"] = database.ConnectionString, ["Kiln__DataDirectory"] = data };
            var healthy = await KilnProcess.RunAsync(env, "health");
            Assert.True(healthy.ExitCode == 0, healthy.Stdout + healthy.Stderr);
            var checks = JsonNode.Parse(healthy.Stdout)!["checks"]!.AsObject();
            // Providers (transcription, enhance) add checks of their own; these three are always there.
            Assert.Subset(checks.Select(c => c.Key).ToHashSet(), new HashSet<string> { "database", "disk", "tools" });
            Assert.All(checks, c => Assert.NotEqual("Unhealthy", c.Value!["status"]!.GetValue<string>()));

            // More free space demanded than any disk has: the disk check fails, and so does the command.
            env["Kiln__MinFreeDiskBytes"] = long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var unhealthy = await KilnProcess.RunAsync(env, "health");
            Assert.Equal(1, unhealthy.ExitCode);
            Assert.Equal("Unhealthy", JsonNode.Parse(unhealthy.Stdout)!["checks"]!["disk"]!["status"]!.GetValue<string>());
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Cleanup_runs_retention_now()
    {
        await using var database = await TestDatabase.CreateAsync();
        var data = Directory.CreateTempSubdirectory("kiln-cleanup-").FullName;
        try
        {
            Guid jobId;
            await using (var server = await TestJobs.StartServerAsync(database: database, dataDirectory: data))
            {
                var (_, jobs) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output]);
                jobId = jobs[TestJobs.Output];
                await server.WaitForJobAsync(jobId, ["completed"]);
            }

            var env = new Dictionary<string, string>
            {
                ["ConnectionStrings__Kiln"] = database.ConnectionString,
                ["Kiln__DataDirectory"] = data,
                ["Kiln__Retention__FinishedJobTtlHours"] = "0.000001",
            };
            var result = await KilnProcess.RunAsync(env, "cleanup");
            Assert.True(result.ExitCode == 0, result.Stderr);
            Assert.Matches("jobs past their TTL deleted: [1-9]", result.Stdout);

            await using var after = await TestJobs.StartServerAsync(database: database, dataDirectory: data);
            Assert.Equal(HttpStatusCode.NotFound, (await after.Admin.GetAsync($"/api/jobs/{jobId}")).StatusCode);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
