using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class CancelPauseTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await QueueServer.StartAsync(_recorder);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Cancelling_a_running_job_fires_its_handler_token()
    {
        var id = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        var run = await _recorder.StartedAsync(id);

        using var response = await _server.Admin.PostAsync($"/api/jobs/{id}/cancel", null);
        await run.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("cancelled", (await response.Content.ReadFromJsonAsync<JsonObject>())!["state"]!.GetValue<string>());
        Assert.Equal("cancelled", await run.Ended.Task.WaitAsync(Poll.DefaultTimeout));
        var row = await _server.JobAsync(id);
        Assert.Equal("cancelled", row.State);
        Assert.Equal("cancelled", row.ErrorCode);
        Assert.Single(_recorder.RunsOf(id));
    }

    [Fact]
    public async Task A_cancel_sent_to_another_node_reaches_the_job()
    {
        var recorder = new JobRecorder();
        await using var database = await TestDatabase.CreateAsync();
        await using var runner = await QueueServer.StartAsync(recorder, database: database);
        await using var other = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?> { ["Kiln:Workers:Enabled"] = "false" }, database);
        var id = await runner.EnqueueAsync(parameters: new() { ["block"] = true });
        var run = await recorder.StartedAsync(id);

        using var response = await other.Admin.PostAsync($"/api/jobs/{id}/cancel", null);
        await run.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("cancelled", (await runner.JobAsync(id)).State);
    }

    [Fact]
    public async Task Pausing_a_running_pausable_job_stops_it_and_resume_runs_it_again_without_counting_an_attempt()
    {
        var id = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        var first = await _recorder.StartedAsync(id);

        using var pause = await _server.Admin.PostAsync($"/api/jobs/{id}/pause", null);
        Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        await first.Cancelled.Task.WaitAsync(Poll.DefaultTimeout);
        var paused = await _server.JobAsync(id);
        Assert.Equal("paused", paused.State);
        Assert.Equal(0, paused.Attempts);

        _recorder.Release(id);
        using var resume = await _server.Admin.PostAsync($"/api/jobs/{id}/resume", null);
        Assert.Equal(HttpStatusCode.OK, resume.StatusCode);

        var job = await _server.WaitForStateAsync(id, "completed");
        Assert.Equal(1, job.Attempts);
        Assert.Equal(2, _recorder.RunsOf(id).Count);
    }

    [Fact]
    public async Task Pausing_a_running_job_whose_kind_cannot_pause_answers_409_and_leaves_it_running()
    {
        var id = await _server.EnqueueAsync(TestKinds.Fixed, new() { ["block"] = true });
        var run = await _recorder.StartedAsync(id);

        using var response = await _server.Admin.PostAsync($"/api/jobs/{id}/pause", null);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal("job.not_pausable", problem!["errorCode"]!.GetValue<string>());
        Assert.Equal("running", (await _server.JobAsync(id)).State);
        Assert.False(run.Cancelled.Task.IsCompleted);
        _recorder.Release(id);
        await _server.WaitForStateAsync(id, "completed");
    }

    [Fact]
    public async Task A_waiting_job_can_be_paused_and_stays_paused_when_its_parent_completes_until_resumed()
    {
        var parent = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        var child = await _server.EnqueueAsync(parentId: parent);
        using (var pause = await _server.Admin.PostAsync($"/api/jobs/{child}/pause", null))
        {
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        }

        _recorder.Release(parent);
        await _server.WaitForStateAsync(parent, "completed");
        Assert.Equal("paused", (await _server.JobAsync(child)).State);

        using (var resume = await _server.Admin.PostAsync($"/api/jobs/{child}/resume", null))
        {
            Assert.Equal(HttpStatusCode.OK, resume.StatusCode);
        }

        await _server.WaitForStateAsync(child, "completed");
    }

    [Fact]
    public async Task A_finished_job_cannot_be_cancelled_or_paused()
    {
        var id = await _server.EnqueueAsync();
        await _server.WaitForStateAsync(id, "completed");

        using var cancel = await _server.Admin.PostAsync($"/api/jobs/{id}/cancel", null);
        using var pause = await _server.Admin.PostAsync($"/api/jobs/{id}/pause", null);

        Assert.Equal(HttpStatusCode.Conflict, cancel.StatusCode);
        Assert.Equal("job.not_cancellable", (await cancel.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Conflict, pause.StatusCode);
        Assert.Equal("job.not_pausable", (await pause.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_cancelled_job_can_be_retried_and_runs_from_its_first_attempt()
    {
        var id = await _server.EnqueueAsync(parameters: new() { ["block"] = true });
        await _recorder.StartedAsync(id);
        using (var cancel = await _server.Admin.PostAsync($"/api/jobs/{id}/cancel", null))
        {
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        }

        _recorder.Release(id);
        using var retry = await _server.Admin.PostAsync($"/api/jobs/{id}/retry", null);

        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        var job = await _server.WaitForStateAsync(id, "completed");
        Assert.Equal(1, job.Attempts);
    }
}
