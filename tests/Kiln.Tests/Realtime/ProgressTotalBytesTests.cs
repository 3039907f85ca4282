using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Realtime;

public sealed class ProgressTotalBytesTests
{
    [Fact]
    public async Task The_probe_reports_the_whole_files_size_as_total_bytes_from_its_first_progress_on()
    {
        await using var server = await KilnServer.StartAsync();
        await using var hub = await RecordingHubClient.ConnectAsync(server.BaseAddress, server.AdminKey);
        await hub.InvokeAsync("join-all");

        // 20 MiB: the probe hashes it in 80 steps of 256 KiB, each with a progress report.
        var bytes = new byte[20 * 1024 * 1024];
        new Random(9).NextBytes(bytes);
        var body = await server.UploadAsync([("big.bin", bytes)], new JsonObject { ["jobs"] = new JsonArray() });
        var probeId = body["assets"]![0]!["jobs"]![0]!["id"]!.GetValue<Guid>();
        await hub.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == probeId, TimeSpan.FromSeconds(120));

        var progress = hub.EventsFor(probeId).Where(e => e.Target == "job-progress").Select(e => e.Payload!).ToList();
        // Progress is coalesced per job on its way to hub clients, so which reports arrive depends on timing; every
        // one that does must carry the whole file's size (it used to carry the bytes hashed so far).
        Assert.NotEmpty(progress);
        Assert.All(progress, p => Assert.Equal(bytes.Length, p["totalBytes"]!.GetValue<long>()));
    }
}
