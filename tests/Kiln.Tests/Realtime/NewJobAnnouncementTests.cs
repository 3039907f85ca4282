using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Security;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;

namespace Kiln.Tests.Realtime;

/// <summary>
/// <c>join-new</c>: a page that lists jobs hears of new ones without hearing every job's progress (the Jobs page
/// follows only the rows it shows). An admin hears every owner's new jobs, a client key only its own.
/// </summary>
public sealed class NewJobAnnouncementTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            [TestKinds.Setting] = "true",
            ["Kiln:Workers:Slots:test"] = "2",
        });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_admin_on_join_new_hears_each_new_job_announced_but_not_its_progress_or_end()
    {
        var (_, ownerId) = await ClientKeyAsync("someone");
        await using var lister = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        await using var everything = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        Assert.True((await lister.InvokeAsync("join-new"))!.GetValue<bool>());
        Assert.False((await lister.InvokeAsync("join-new"))!.GetValue<bool>());
        Assert.True((await everything.InvokeAsync("join-all"))!.GetValue<bool>());

        var jobId = await EnqueueAsync(ownerId);
        await DeliveredEverythingAboutAsync(everything, jobId, lister);

        var heard = lister.EventsFor(jobId);
        Assert.Equal(["job-queued"], heard.Select(e => e.Target));
        Assert.Contains(everything.EventsFor(jobId), e => e.Target == "job-progress");
    }

    [Fact]
    public async Task A_client_on_join_new_hears_its_own_new_jobs_and_not_another_clients()
    {
        var (key, ownerId) = await ClientKeyAsync("lister");
        var (_, otherId) = await ClientKeyAsync("other");
        await using var lister = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await using var everything = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        Assert.True((await lister.InvokeAsync("join-new"))!.GetValue<bool>());
        Assert.True((await everything.InvokeAsync("join-all"))!.GetValue<bool>());

        var own = await EnqueueAsync(ownerId);
        var others = await EnqueueAsync(otherId);
        await DeliveredEverythingAboutAsync(everything, own, lister);
        await DeliveredEverythingAboutAsync(everything, others, lister);

        Assert.Equal(["job-queued"], lister.EventsFor(own).Select(e => e.Target));
        Assert.Empty(lister.EventsFor(others));
    }

    [Fact]
    public async Task After_leave_new_no_announcement_arrives()
    {
        var (key, ownerId) = await ClientKeyAsync("leaver");
        await using var lister = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await using var everything = await RecordingHubClient.ConnectAsync(_server.BaseAddress, _server.AdminKey);
        await lister.InvokeAsync("join-new");
        Assert.True((await everything.InvokeAsync("join-all"))!.GetValue<bool>());

        Assert.True((await lister.InvokeAsync("leave-new"))!.GetValue<bool>());
        Assert.False((await lister.InvokeAsync("leave-new"))!.GetValue<bool>());
        var jobId = await EnqueueAsync(ownerId);
        await DeliveredEverythingAboutAsync(everything, jobId, lister);

        Assert.Empty(lister.EventsFor(jobId));
    }

    [Fact]
    public async Task A_transcript_edit_is_announced_to_its_owner_on_join_new_and_not_to_another_client()
    {
        var (key, _) = await ClientKeyAsync("editor");
        var (otherKey, _) = await ClientKeyAsync("bystander");
        using var http = _server.CreateClient(key);
        var asset = (await _server.UploadAsync([("notes.txt", "plain text, no media"u8.ToArray())], client: http))["assets"]![0]!["id"]!.GetValue<Guid>();
        await using var owner = await RecordingHubClient.ConnectAsync(_server.BaseAddress, key);
        await using var other = await RecordingHubClient.ConnectAsync(_server.BaseAddress, otherKey);
        await owner.InvokeAsync("join-new");
        await other.InvokeAsync("join-new");

        using var edit = await http.PutAsJsonAsync($"/api/assets/{asset}/transcripts", new { text = "Written by hand." });
        edit.EnsureSuccessStatusCode();

        var heard = await owner.WaitForAsync("transcript-updated", e => e!["assetId"]!.GetValue<Guid>() == asset);
        Assert.Equal("MANUAL", heard.Payload!["source"]!.GetValue<string>());
        Assert.Equal(1, heard.Payload!["version"]!.GetValue<int>());
        await other.InvokeAsync("leave-job", Guid.NewGuid());
        Assert.Empty(other.EventsFor(asset));
    }

    /// <summary>Once the admin following everything heard the job end, anything meant for the client is ahead of one more answer.</summary>
    private static async Task DeliveredEverythingAboutAsync(RecordingHubClient everything, Guid jobId, RecordingHubClient client)
    {
        await everything.WaitForAsync("job-completed", e => e!["jobId"]!.GetValue<Guid>() == jobId);
        await client.InvokeAsync("leave-job", Guid.NewGuid());
    }

    private async Task<(string Key, Guid Id)> ClientKeyAsync(string name)
    {
        var created = await _server.Get<ApiKeyStore>().CreateAsync(name, Roles.Client, CancellationToken.None);
        return (created.Secret, created.Info.Id);
    }

    private async Task<Guid> EnqueueAsync(Guid ownerId)
    {
        var job = new NewJob
        {
            Kind = TestKinds.Sleep,
            Queue = TestKinds.Queue,
            OwnerId = ownerId,
            Params = new JsonObject { ["durationMs"] = 100, ["steps"] = 2 },
            MaxAttempts = 1,
        };
        await _server.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        return job.Id;
    }
}
