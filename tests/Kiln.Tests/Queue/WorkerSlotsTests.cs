using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Kiln.Tests.Queue;

public sealed class WorkerSlotsTests : IAsyncDisposable
{
    private readonly JobRecorder _recorder = new();
    private KilnServer? _server;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_queue_runs_at_most_its_configured_slots_at_once()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "3" });
        var ids = new List<Guid>();
        for (var i = 0; i < 9; i++)
        {
            ids.Add(await _server.EnqueueAsync(parameters: new() { ["block"] = true }));
        }

        await Poll.UntilAsync(() => Task.FromResult(_recorder.Running == 3), "three jobs running");
        Assert.Equal(6L, await _server.ScalarAsync("select count(*) from jobs where state = 'queued' and queue = 'test'"));
        foreach (var id in ids)
        {
            _recorder.Release(id);
        }

        foreach (var id in ids)
        {
            await _server.WaitForStateAsync(id, "completed");
        }

        Assert.Equal(3, _recorder.MaxRunning);
    }

    [Fact]
    public async Task A_queue_with_no_slots_is_not_served_in_this_process()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:other"] = "0" });
        var other = await _server.EnqueueAsync(TestKinds.Other, priority: 1);
        var test = await _server.EnqueueAsync(TestKinds.Run);

        await _server.WaitForStateAsync(test, "completed");

        Assert.Equal("queued", (await _server.JobAsync(other)).State);
        Assert.Empty(_recorder.RunsOf(other));
    }

    [Fact]
    public async Task Negative_slots_fail_the_start_with_a_message_naming_the_setting()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() =>
            QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "-1" }));

        Assert.Contains("Kiln:Workers:Slots:test", error.Message, StringComparison.Ordinal);
    }
}
