using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Workers;

public sealed class RemoteWorkerOptionsTests
{
    [Theory]
    [InlineData("Kiln:RemoteWorkers:HeartbeatTimeoutSeconds", "15", "Kiln:RemoteWorkers:HeartbeatTimeoutSeconds")]
    [InlineData("Kiln:RemoteWorkers:MaxMessageBytes", "10", "MaxMessageBytes")]
    [InlineData("Kiln:Realtime:NotifyPayloadBytes", "9000", "NotifyPayloadBytes")]
    public async Task A_bad_setting_stops_the_server_from_starting_with_a_message_naming_it(string key, string value, string named)
    {
        await using var database = await TestDatabase.CreateAsync();
        var data = Directory.CreateTempSubdirectory("kiln-test-data-").FullName;
        try
        {
            var settings = new Dictionary<string, string?> { ["Kiln:RemoteWorkers:HeartbeatIntervalSeconds"] = "10", [key] = value };

            var error = await Assert.ThrowsAnyAsync<Exception>(() => KilnServer.StartAsync(settings, database: database, dataDirectory: data));

            Assert.Contains(named, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
