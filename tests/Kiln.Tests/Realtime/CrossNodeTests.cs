using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Realtime;
using Kiln.Security;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;

namespace Kiln.Tests.Realtime;

/// <summary>
/// Two servers on one database: node A serves hub clients but runs no test jobs, node B runs them. Events cross
/// through NOTIFY, and only for jobs someone on another node watches.
/// </summary>
public sealed class CrossNodeTests : IAsyncLifetime
{
    private static readonly string RelayedOut = KilnMetrics.Labels(("direction", "out"));
    private static readonly string EventPayloads = KilnMetrics.Labels(("kind", "events"));

    private TestDatabase _database = null!;
    private KilnServer _a = null!;
    private KilnServer _b = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _a = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:NodeName"] = "node-a", [TestKinds.Setting] = "true" }, database: _database);
        _b = await KilnServer.StartAsync(
            new Dictionary<string, string?> { ["Kiln:NodeName"] = "node-b", [TestKinds.Setting] = "true", ["Kiln:Workers:Slots:test"] = "2" },
            database: _database);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in new[] { _a, _b })
        {
            await server.DisposeAsync();
            Directory.Delete(server.DataDirectory, recursive: true);
        }

        await _database.DisposeAsync();
    }

    [Fact]
    public async Task A_client_on_one_node_follows_a_job_run_on_the_other_from_start_to_end()
    {
        var owner = await _a.Get<ApiKeyStore>().CreateAsync("cross", Roles.Client, CancellationToken.None);
        var jobId = await EnqueueOnAAsync(owner.Info.Id, new JsonObject { ["durationMs"] = 400, ["steps"] = 4 }, held: true);
        await using var hub = await RecordingHubClient.ConnectAsync(_a.BaseAddress, owner.Secret);

        await hub.InvokeAsync("join-job", jobId);

        // Node B has heard that A watches the job before the job starts there.
        await UntilAsync(() => _b.Get<EventRelay>().RemoteWants(jobId));
        await HeldJobs.ReleaseAsync(_a, jobId);
        var completed = await hub.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);

        var job = await _a.WaitForJobAsync(jobId, ["completed"]);
        Assert.Null(job["leaseOwner"]);
        var events = hub.EventsFor(jobId).Select(e => e.Target).ToList();
        Assert.Equal("job-queued", events[0]);
        Assert.Contains("job-update", events);
        Assert.Equal(4, events.Count(e => e == "job-progress"));
        Assert.Equal("job-completed", events[^1]);
        Assert.Equal(400, completed.Payload!["result"]!["slept"]!.GetValue<double>());
        Assert.True(_b.Get<KilnMetrics>().CounterValue("kiln_relay_events_total", RelayedOut) >= 5);
    }

    [Fact]
    public async Task An_admin_watching_everything_on_one_node_sees_jobs_running_on_the_other()
    {
        await using var hub = await RecordingHubClient.ConnectAsync(_a.BaseAddress, _a.AdminKey);
        await hub.InvokeAsync("join-all");
        await UntilAsync(() => _b.Get<EventRelay>().RemoteWants(Guid.NewGuid()));

        var jobId = await EnqueueOnAAsync(null, new JsonObject { ["durationMs"] = 100, ["steps"] = 2 });

        await hub.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        Assert.Contains(hub.EventsFor(jobId), e => e.Target == "job-progress");

        // Leaving is announced too: the other node stops relaying everything at once, not after the interest expires.
        await hub.InvokeAsync("leave-all");
        await UntilAsync(() => !_b.Get<EventRelay>().RemoteWants(Guid.NewGuid()));
        var relayed = _b.Get<KilnMetrics>().CounterValue("kiln_relay_events_total", RelayedOut);
        var after = await EnqueueOnAAsync(null, new JsonObject { ["durationMs"] = 20, ["steps"] = 2 });
        await _a.WaitForJobAsync(after, ["completed"]);
        Assert.Equal(relayed, _b.Get<KilnMetrics>().CounterValue("kiln_relay_events_total", RelayedOut));
    }

    [Fact]
    public async Task Nothing_is_relayed_for_jobs_nobody_on_another_node_watches()
    {
        var before = _b.Get<KilnMetrics>().CounterValue("kiln_relay_events_total", RelayedOut);
        var notifications = _b.Get<KilnMetrics>().CounterValue("kiln_relay_notifications_total", EventPayloads);
        var jobs = new List<Guid>();
        for (var i = 0; i < 5; i++)
        {
            jobs.Add(await EnqueueOnAAsync(null, new JsonObject { ["durationMs"] = 20, ["steps"] = 2 }));
        }

        foreach (var id in jobs)
        {
            await _a.WaitForJobAsync(id, ["completed"]);
        }

        Assert.Equal(before, _b.Get<KilnMetrics>().CounterValue("kiln_relay_events_total", RelayedOut));
        Assert.Equal(notifications, _b.Get<KilnMetrics>().CounterValue("kiln_relay_notifications_total", EventPayloads));
    }

    [Fact]
    public async Task A_listing_page_on_one_node_hears_new_jobs_enqueued_on_the_other_but_not_their_progress()
    {
        await using var hub = await RecordingHubClient.ConnectAsync(_a.BaseAddress, _a.AdminKey);
        await hub.InvokeAsync("join-new");
        await UntilAsync(() => _b.Get<EventRelay>().RemoteWantsAnnouncements);
        var job = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = new JsonObject { ["durationMs"] = 100, ["steps"] = 2 } };

        await _b.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);

        await hub.WaitForAsync("job-queued", e => e!["jobId"]!.GetValue<Guid>() == job.Id);
        await _b.WaitForJobAsync(job.Id, ["completed"]);
        Assert.False(_b.Get<EventRelay>().RemoteWants(job.Id));
        Assert.DoesNotContain(hub.EventsFor(job.Id), e => e.Target is "job-progress" or "job-completed");
    }

    private static Task UntilAsync(Func<bool> condition) =>
        Poll.UntilAsync(() => Task.FromResult(condition()), "the other node to hear", timeoutSeconds: 60);

    private async Task<Guid> EnqueueOnAAsync(Guid? owner, JsonObject parameters, bool held = false)
    {
        var job = new NewJob
        {
            Kind = TestKinds.Sleep,
            Queue = TestKinds.Queue,
            OwnerId = owner,
            Params = parameters,
            RunAt = held ? HeldJobs.Hold : null,
        };
        await _a.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        return job.Id;
    }
}
