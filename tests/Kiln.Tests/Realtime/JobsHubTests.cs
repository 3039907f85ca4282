using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Security;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;
using Microsoft.AspNetCore.SignalR;
using Npgsql;

namespace Kiln.Tests.Realtime;

public sealed class JobsHubTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            [TestKinds.Setting] = "true",
            ["Kiln:Workers:Slots:test"] = "2",
            ["Kiln:Realtime:KeyCheckIntervalSeconds"] = "0.5",
        });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_client_sees_its_job_go_from_queued_through_progress_to_completed_in_order()
    {
        var (key, keyId) = await ClientKeyAsync("owner");
        var jobId = await EnqueueAsync(keyId, new JsonObject { ["durationMs"] = 300, ["steps"] = 5 }, held: true);
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);

        var status = (await hub.InvokeAsync("join-job", jobId))!;
        await HeldJobs.ReleaseAsync(_server, jobId);
        Assert.Equal("queued", status["status"]!.GetValue<string>());
        Assert.Equal(TestKinds.Sleep, status["kind"]!.GetValue<string>());
        await hub.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);

        var events = hub.EventsFor(jobId);
        Assert.Equal("job-queued", events[0].Target);
        Assert.Equal(0, events[0].Payload!["position"]!.GetValue<long>());
        var running = events.FindIndex(e => e.Target == "job-update" && e.Payload!["status"]?.GetValue<string>() == "running");
        var progress = events.Select((e, i) => (e, i)).Where(x => x.e.Target == "job-progress").ToList();
        var completed = events.FindIndex(e => e.Target == "job-completed");
        Assert.True(running > 0, string.Join(", ", events.Select(e => e.Target)));
        Assert.NotEmpty(progress);
        Assert.True(progress.All(p => p.i > running && p.i < completed));
        Assert.Equal(completed, events.Count - 1);
        var values = progress.Select(p => p.e.Payload!["progress"]!.GetValue<double>()).ToList();
        Assert.Equal(values.Order(), values);
        Assert.Equal(100, values[^1]);
        Assert.Equal("sleep", progress[^1].e.Payload!["stage"]!.GetValue<string>());
        Assert.Equal(300, events[completed].Payload!["result"]!["slept"]!.GetValue<double>());
    }

    [Fact]
    public async Task A_client_cannot_join_or_read_another_clients_job_and_hears_nothing_of_it()
    {
        var (_, ownerId) = await ClientKeyAsync("owner");
        var (otherKey, _) = await ClientKeyAsync("other");
        var jobId = await EnqueueAsync(ownerId, new JsonObject { ["durationMs"] = 200, ["steps"] = 4 }, held: true);
        await using var other = await RecordingHubClient.ConnectAsync(_server.BaseAddress, otherKey);
        await using var admin = await WatchEverythingAsync();

        var join = await Assert.ThrowsAsync<HubException>(() => other.InvokeAsync("join-job", jobId));
        var status = await Assert.ThrowsAsync<HubException>(() => other.InvokeAsync("get-status", jobId));
        var all = await Assert.ThrowsAsync<HubException>(() => other.InvokeAsync("join-all"));
        await HeldJobs.ReleaseAsync(_server, jobId);

        Assert.Contains("not_found", join.Message, StringComparison.Ordinal);
        Assert.Contains("not_found", status.Message, StringComparison.Ordinal);
        Assert.Contains("unauthorized", all.Message, StringComparison.OrdinalIgnoreCase);
        await DeliveredEverythingAboutAsync(admin, jobId, other);
        Assert.Empty(other.EventsFor(jobId));
    }

    [Fact]
    public async Task After_leaving_a_job_the_client_receives_no_more_of_its_events()
    {
        var (key, keyId) = await ClientKeyAsync("leaver");
        var jobId = await EnqueueAsync(keyId, new JsonObject { ["durationMs"] = 200, ["steps"] = 4 }, held: true);
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await using var admin = await WatchEverythingAsync();
        await hub.InvokeAsync("join-job", jobId);

        var left = await hub.InvokeAsync("leave-job", jobId);
        var leftAgain = await hub.InvokeAsync("leave-job", jobId);
        await HeldJobs.ReleaseAsync(_server, jobId);
        await DeliveredEverythingAboutAsync(admin, jobId, hub);

        Assert.True(left!.GetValue<bool>());
        Assert.False(leftAgain!.GetValue<bool>());
        Assert.Equal(["job-queued"], hub.EventsFor(jobId).Select(e => e.Target));
    }

    [Fact]
    public async Task An_admin_watching_every_job_sees_jobs_it_never_joined()
    {
        var (_, keyId) = await ClientKeyAsync("someone");
        await using var admin = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        Assert.True((await admin.InvokeAsync("join-all"))!.GetValue<bool>());

        var jobId = await EnqueueAsync(keyId, new JsonObject { ["durationMs"] = 50, ["steps"] = 2 });

        await admin.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        Assert.Contains(admin.EventsFor(jobId), e => e.Target == "job-progress");
    }

    [Fact]
    public async Task Get_status_reports_a_failed_job_with_its_error_and_job_error_reaches_the_watcher()
    {
        var (key, keyId) = await ClientKeyAsync("failer");
        var jobId = await EnqueueAsync(keyId, new JsonObject { ["durationMs"] = 50, ["steps"] = 1, ["failCode"] = "broken_input" }, held: true);
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await hub.InvokeAsync("join-job", jobId);
        await HeldJobs.ReleaseAsync(_server, jobId);

        var error = await hub.WaitForAsync("job-error", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        var status = (await hub.InvokeAsync("get-status", jobId))!;

        Assert.Equal("broken_input", error.Payload!["errorCode"]!.GetValue<string>());
        Assert.Equal("Asked to fail.", error.Payload!["message"]!.GetValue<string>());
        Assert.Equal("failed", status["status"]!.GetValue<string>());
        Assert.Equal("broken_input", status["errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Cancelling_a_watched_job_sends_job_error_cancelled()
    {
        var (key, keyId) = await ClientKeyAsync("canceller");
        var jobId = await EnqueueAsync(keyId, new JsonObject { ["durationMs"] = 30_000, ["steps"] = 300 });
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await hub.InvokeAsync("join-job", jobId);
        await hub.WaitForAsync("job-progress", e => e!["jobId"]!.GetValue<Guid>() == jobId);

        using var response = await _server.Admin.PostAsync($"/api/jobs/{jobId}/cancel", null);
        response.EnsureSuccessStatusCode();

        var error = await hub.WaitForAsync("job-error", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        Assert.Equal("cancelled", error.Payload!["errorCode"]!.GetValue<string>());
        await hub.WaitForAsync("job-update", e => e!["jobId"]!.GetValue<Guid>() == jobId && e["status"]?.GetValue<string>() == "cancelled");
    }

    [Fact]
    public async Task A_watcher_is_told_a_job_ended_even_when_no_event_of_its_end_reached_this_node()
    {
        var (key, keyId) = await ClientKeyAsync("reconciled");
        var jobId = await EnqueueAsync(keyId, [], held: true);
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await hub.InvokeAsync("join-job", jobId);

        // As if another node finished it while its events could not reach this one.
        await using (var cmd = _server.Get<NpgsqlDataSource>().CreateCommand(
            "update jobs set state = 'completed', progress = 100, result = '{\"elsewhere\": true}', finished_at = now() where id = @id"))
        {
            cmd.Parameters.AddWithValue("id", jobId);
            await cmd.ExecuteNonQueryAsync();
        }

        var completed = await hub.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        Assert.True(completed.Payload!["result"]!["elsewhere"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_hub_connection_without_a_valid_key_is_refused()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => RecordingHubClient.ConnectAsync(_server.BaseAddress, "kiln_not_a_key"));
        Assert.Contains("401", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoking_a_key_closes_its_open_hub_connections_and_no_other()
    {
        var (key, keyId) = await ClientKeyAsync("revoked-later");
        var (otherKey, _) = await ClientKeyAsync("stays");
        await using var hub = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await using var other = await RecordingHubClient.ConnectAsync(_server.BaseAddress, otherKey);
        await hub.InvokeAsync("join-job", await EnqueueAsync(keyId, new JsonObject { ["durationMs"] = 10 }, held: true));

        // As `kiln keys revoke` does: straight in the database, so only the periodic check can notice.
        await _server.Get<ApiKeyStore>().RevokeAsync(keyId.ToString(), CancellationToken.None);

        await hub.Closed.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);

        // The other connection still answers.
        Assert.False(other.Closed.IsCompleted);
        Assert.False((await other.InvokeAsync("leave-job", Guid.NewGuid()))!.GetValue<bool>());
    }

    /// <summary>An admin connection following every job: it hears each job's events right after its watchers do.</summary>
    private async Task<RecordingHubClient> WatchEverythingAsync()
    {
        var admin = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        Assert.True((await admin.InvokeAsync("join-all"))!.GetValue<bool>());
        return admin;
    }

    /// <summary>
    /// Returns once every event of the job has reached <paramref name="client"/>, so a test can assert it heard none
    /// without a fixed sleep: the dispatcher sends each event to the job's watchers before the admins following
    /// everything, so once the admin heard the job end, anything meant for the client is in its connection's stream,
    /// ahead of the answer to one more invocation.
    /// </summary>
    private static async Task DeliveredEverythingAboutAsync(RecordingHubClient admin, Guid jobId, RecordingHubClient client)
    {
        await admin.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        await client.InvokeAsync("leave-job", Guid.NewGuid());
    }

    private async Task<(string Key, Guid Id)> ClientKeyAsync(string name)
    {
        var created = await _server.Get<ApiKeyStore>().CreateAsync(name, Roles.Client, CancellationToken.None);
        return (created.Secret, created.Info.Id);
    }

    private async Task<Guid> EnqueueAsync(Guid ownerId, JsonObject parameters, bool held = false)
    {
        var job = new NewJob
        {
            Kind = TestKinds.Sleep,
            Queue = TestKinds.Queue,
            OwnerId = ownerId,
            Params = parameters,
            RunAt = held ? HeldJobs.Hold : null,
            MaxAttempts = 1,
        };
        await _server.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        return job.Id;
    }
}
