using System.Net;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Queue;

public sealed class ParentChildTests : IAsyncLifetime
{
    private readonly JobRecorder _recorder = new();
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await QueueServer.StartAsync(_recorder);

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_child_waits_until_its_parent_completes()
    {
        var parent = QueueServer.NewJob(parameters: new() { ["block"] = true });
        var child = QueueServer.NewJob(parentId: parent.Id, priority: 1);
        var enqueued = await _server.Get<JobStore>().EnqueueAsync([parent, child], CancellationToken.None);
        Assert.Equal(["queued", "waiting"], enqueued.Jobs.Select(j => j.State));

        await _recorder.StartedAsync(parent.Id);
        Assert.Equal("waiting", (await _server.JobAsync(child.Id)).State);
        _recorder.Release(parent.Id);

        var childRow = await _server.WaitForStateAsync(child.Id, "completed");
        var parentRow = await _server.JobAsync(parent.Id);
        Assert.True(childRow.StartedAt >= parentRow.FinishedAt, "the child started before its parent finished");
    }

    [Fact]
    public async Task A_failed_parent_fails_its_waiting_children_at_every_depth()
    {
        var parent = QueueServer.NewJob(parameters: new() { ["fail"] = new JsonObject { ["retryable"] = false } });
        var child = QueueServer.NewJob(parentId: parent.Id);
        var grandchild = QueueServer.NewJob(parentId: child.Id);
        await _server.Get<JobStore>().EnqueueAsync([parent, child, grandchild], CancellationToken.None);

        await _server.WaitForStateAsync(parent.Id, "failed");

        foreach (var id in new[] { child.Id, grandchild.Id })
        {
            var row = await _server.JobAsync(id);
            Assert.Equal("failed", row.State);
            Assert.Equal("parent_failed", row.ErrorCode);
            Assert.NotNull(row.FinishedAt);
            Assert.Empty(_recorder.RunsOf(id));
        }
    }

    [Fact]
    public async Task A_cancelled_parent_cancels_its_waiting_children()
    {
        var parent = QueueServer.NewJob(parameters: new() { ["block"] = true });
        var child = QueueServer.NewJob(parentId: parent.Id);
        await _server.Get<JobStore>().EnqueueAsync([parent, child], CancellationToken.None);
        await _recorder.StartedAsync(parent.Id);

        using var response = await _server.Admin.PostAsync($"/api/jobs/{parent.Id}/cancel", null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var row = await _server.JobAsync(child.Id);
        Assert.Equal("cancelled", row.State);
        Assert.Equal("parent_cancelled", row.ErrorCode);
        Assert.Empty(_recorder.RunsOf(child.Id));
    }

    [Fact]
    public async Task A_child_keeps_waiting_while_its_parent_is_retried_and_runs_after_the_retry_succeeds()
    {
        var parent = QueueServer.NewJob(parameters: new() { ["fail"] = new JsonObject { ["times"] = 1 } });
        var child = QueueServer.NewJob(parentId: parent.Id);
        await _server.Get<JobStore>().EnqueueAsync([parent, child], CancellationToken.None);

        var retry = await _recorder.StartedAsync(parent.Id, attempt: 2);
        var childRun = await _recorder.StartedAsync(child.Id);

        Assert.True(childRun.StartedTicks > retry.StartedTicks);
        Assert.Single(_recorder.RunsOf(child.Id));
        await _server.WaitForStateAsync(child.Id, "completed");
    }

    [Fact]
    public async Task A_child_enqueued_after_its_parent_finished_takes_the_outcome_of_the_parent()
    {
        var done = await _server.EnqueueAsync();
        var broken = await _server.EnqueueAsync(parameters: new() { ["fail"] = new JsonObject { ["retryable"] = false } });
        await _server.WaitForStateAsync(done, "completed");
        await _server.WaitForStateAsync(broken, "failed");

        var runs = await _server.EnqueueAsync(parentId: done);
        var orphan = await _server.EnqueueAsync(parentId: broken);

        await _server.WaitForStateAsync(runs, "completed");
        var row = await _server.JobAsync(orphan);
        Assert.Equal("failed", row.State);
        Assert.Equal("parent_failed", row.ErrorCode);
        Assert.NotNull(row.FinishedAt);
    }

    [Fact]
    public async Task A_child_of_a_job_that_does_not_exist_fails_at_once()
    {
        var child = await _server.EnqueueAsync(parentId: Guid.CreateVersion7());

        var row = await _server.JobAsync(child);

        Assert.Equal("failed", row.State);
        Assert.Equal("parent_missing", row.ErrorCode);
        Assert.Empty(_recorder.RunsOf(child));
    }

    [Fact]
    public async Task A_delayed_child_keeps_its_run_at_when_its_parent_completes()
    {
        var parent = QueueServer.NewJob();
        var runAt = DateTimeOffset.UtcNow.AddMinutes(5);
        var child = QueueServer.NewJob(parentId: parent.Id, runAt: runAt);
        await _server.Get<JobStore>().EnqueueAsync([parent, child], CancellationToken.None);

        await _server.WaitForStateAsync(parent.Id, "completed");
        var row = await _server.WaitForStateAsync(child.Id, "queued");

        Assert.InRange((row.RunAt - runAt).TotalMilliseconds, -1, 1);
    }
}
