using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class QueuePauseTests : IAsyncDisposable
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
    public async Task A_paused_queue_starts_nothing_until_it_is_resumed()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Queue:IdlePollSeconds"] = "600" });
        await _server.Get<QueueStore>().EnsureAsync(TestKinds.Queue, 1000, 200, CancellationToken.None);
        using (var pause = await _server.Admin.PostAsync("/api/queues/test/pause", null))
        {
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
            Assert.True((await pause.Content.ReadFromJsonAsync<JsonObject>())!["paused"]!.GetValue<bool>());
        }

        var paused = await _server.EnqueueAsync(priority: 1);
        var unrelated = await _server.EnqueueAsync(TestKinds.Other);
        await _server.WaitForStateAsync(unrelated, "completed");
        Assert.Equal("queued", (await _server.JobAsync(paused)).State);
        Assert.Empty(_recorder.RunsOf(paused));

        using (var resume = await _server.Admin.PostAsync("/api/queues/test/resume", null))
        {
            Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
        }

        // The idle poll is 600 s: only the resume's wake-up can start the job within this wait.
        var run = await _recorder.StartedAsync(paused);
        Assert.Equal(paused, run.JobId);
        await _server.WaitForStateAsync(paused, "completed");
    }

    [Fact]
    public async Task Pausing_a_queue_lets_its_running_jobs_finish()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "1" });
        var running = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        var run = await _recorder.StartedAsync(running);
        Assert.True(await _server.Get<QueueStore>().SetPausedAsync(TestKinds.Queue, true, CancellationToken.None));
        var next = await _server.EnqueueAsync();

        _recorder.Release(running);
        await _server.WaitForStateAsync(running, "completed");

        Assert.False(run.Cancelled.Task.IsCompleted);
        Assert.Equal("queued", (await _server.JobAsync(next)).State);
        Assert.True(await _server.Get<QueueStore>().SetPausedAsync(TestKinds.Queue, false, CancellationToken.None));
        await _server.WaitForStateAsync(next, "completed");
    }

    [Fact]
    public async Task A_lease_on_a_paused_queue_gets_nothing()
    {
        _server = await QueueServer.StartAsync(_recorder, new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });
        var id = await _server.EnqueueAsync();
        var queues = _server.Get<QueueStore>();
        Assert.True(await queues.SetPausedAsync(TestKinds.Queue, true, CancellationToken.None));

        Assert.Empty((await _server.LeaseAsync(5)).Jobs);

        Assert.True(await queues.SetPausedAsync(TestKinds.Queue, false, CancellationToken.None));
        Assert.Equal(id, Assert.Single((await _server.LeaseAsync(5)).Jobs).JobId);
    }

    [Fact]
    public async Task Pausing_an_unknown_queue_answers_404()
    {
        _server = await QueueServer.StartAsync(_recorder);
        using var response = await _server.Admin.PostAsync("/api/queues/no-such-queue/pause", null);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
