using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Queue;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Api;

public sealed class QueueEndpointTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestJobs.StartServerAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Queues_are_listed_with_their_limits_and_job_counts()
    {
        var (_, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Fail]);
        await _server.WaitForJobAsync(jobs[TestJobs.Fail], ["failed"]);

        var queues = (await _server.Admin.GetFromJsonAsync<JsonArray>("/api/queues"))!;
        var test = queues.Single(q => q!["name"]!.GetValue<string>() == TestJobs.Queue)!;
        Assert.Equal(1, test["failed"]!.GetValue<long>());
        Assert.False(test["paused"]!.GetValue<bool>());
        Assert.Equal(200, test["keepFailed"]!.GetValue<int>());
        var defaults = queues.Single(q => q!["name"]!.GetValue<string>() == "default")!;
        Assert.Equal(1, defaults["completed"]!.GetValue<long>());

        using var missing = await _server.Admin.GetAsync("/api/queues/nope");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("not_found", await JobEndpointTests.ErrorCodeAsync(missing));
    }

    [Fact]
    public async Task A_paused_queue_leases_nothing_until_it_is_resumed()
    {
        var paused = await PostAsync($"/api/queues/{TestJobs.Queue}/pause");
        Assert.True(paused["paused"]!.GetValue<bool>());

        var (_, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Output]);
        await _server.WaitForJobAsync(jobs["probe"], ["completed"]);
        // Asked directly, as the in-process loop asks: no sleep to wait for a lease that must not happen.
        Assert.Empty(await LeaseAsync(TestJobs.Output));
        Assert.Equal("queued", (await _server.Admin.GetJsonAsync($"/api/jobs/{jobs[TestJobs.Output]}"))["state"]!.GetValue<string>());
        Assert.Equal(1, (await _server.Admin.GetJsonAsync($"/api/queues/{TestJobs.Queue}"))["waiting"]!.GetValue<long>());

        var resumed = await PostAsync($"/api/queues/{TestJobs.Queue}/resume");
        Assert.False(resumed["paused"]!.GetValue<bool>());
        await _server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
    }

    [Fact]
    public async Task Retry_failed_requeues_every_failed_job_and_clean_deletes_finished_ones()
    {
        var failed = new List<Guid>();
        for (var i = 0; i < 2; i++)
        {
            var (_, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Fail]);
            failed.Add(jobs[TestJobs.Fail]);
            await _server.WaitForJobAsync(jobs[TestJobs.Fail], ["failed"]);
        }

        var retried = await PostAsync($"/api/queues/{TestJobs.Queue}/retry-failed");
        Assert.Equal(2, retried["count"]!.GetValue<int>());
        foreach (var id in failed)
        {
            // They run again (and fail again: that is all test.fail does), with fresh attempts.
            var job = await _server.WaitForJobAsync(id, ["failed"]);
            Assert.Equal(1, job["attempts"]!.GetValue<int>());
        }

        await Poll.UntilAsync(
            () => _server.Admin.GetJsonAsync($"/api/queues/{TestJobs.Queue}"), q => q["failed"]!.GetValue<long>() >= 2, "the queue to count 2 failed jobs");

        using var kept = await _server.Admin.PostAsync($"/api/queues/{TestJobs.Queue}/clean?state=failed&graceSeconds=3600", null);
        Assert.Equal(0, (await kept.Content.ReadFromJsonAsync<JsonObject>())!["count"]!.GetValue<int>());
        var cleaned = await PostAsync($"/api/queues/{TestJobs.Queue}/clean?state=failed");
        Assert.Equal(2, cleaned["count"]!.GetValue<int>());
        using var gone = await _server.Admin.GetAsync($"/api/jobs/{failed[0]}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);

        using var badState = await _server.Admin.PostAsync($"/api/queues/{TestJobs.Queue}/clean?state=running", null);
        Assert.Equal(HttpStatusCode.BadRequest, badState.StatusCode);
        Assert.Equal("queue.bad_state", await JobEndpointTests.ErrorCodeAsync(badState));
    }

    [Fact]
    public async Task Patching_a_queue_changes_its_concurrency_and_the_change_is_obeyed()
    {
        using var patch = await _server.Admin.PatchAsJsonAsync($"/api/queues/{TestJobs.Queue}", new { concurrency = 1, rateMax = 100, ratePeriodMs = 60_000 });
        Assert.Equal(HttpStatusCode.OK, patch.StatusCode);
        var updated = (await patch.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(1, updated["concurrency"]!.GetValue<int>());
        Assert.Equal(100, updated["rateMax"]!.GetValue<int>());
        Assert.Equal(60_000, updated["ratePeriodMs"]!.GetValue<int>());
        Assert.Equal(1000, updated["keepCompleted"]!.GetValue<int>());

        var gates = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            gates.Add((await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Gate])).Jobs[TestJobs.Gate]);
        }

        // Whichever probe finishes first releases its gate job; the other two must wait for the one slot.
        await Poll.UntilAsync(
            async () => (await _server.Admin.GetJsonAsync($"/api/jobs?queue={TestJobs.Queue}&state=queued"))["total"]!.GetValue<long>() >= 2
                && (await _server.Admin.GetJsonAsync($"/api/jobs?queue={TestJobs.Queue}&state=running"))["total"]!.GetValue<long>() >= 1,
            "two gate jobs queued and one running");

        // The one slot is taken: asked directly, the queue hands out neither of the others.
        Assert.Empty(await LeaseAsync(TestJobs.Gate));
        var stats = await _server.Admin.GetJsonAsync($"/api/queues/{TestJobs.Queue}");
        Assert.Equal(1, stats["active"]!.GetValue<long>());
        Assert.Equal(2, stats["waiting"]!.GetValue<long>());

        using var open = await _server.Admin.PatchAsJsonAsync($"/api/queues/{TestJobs.Queue}", new { concurrency = 0 });
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        foreach (var gate in gates)
        {
            await _server.WaitForJobAsync(gate, ["running"]);
        }

        _server.Get<TestGate>().Open();
    }

    [Theory]
    [InlineData("""{"concurrency":-1}""", HttpStatusCode.BadRequest, "queue.invalid_settings")]
    [InlineData("""{"ratePeriodMs":0}""", HttpStatusCode.BadRequest, "queue.invalid_settings")]
    [InlineData("""{"concurrency":"many"}""", HttpStatusCode.BadRequest, "bad_request")]
    public async Task An_invalid_queue_patch_answers_400_with_a_code(string json, HttpStatusCode status, string code)
    {
        using var response = await _server.Admin.PatchAsync($"/api/queues/{TestJobs.Queue}", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task Operations_on_an_unknown_queue_answer_404()
    {
        foreach (var op in new[] { "pause", "resume", "retry-failed", "clean" })
        {
            using var response = await _server.Admin.PostAsync($"/api/queues/nope/{op}", null);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        using var patch = await _server.Admin.PatchAsJsonAsync("/api/queues/nope", new { concurrency = 2 });
        Assert.Equal(HttpStatusCode.NotFound, patch.StatusCode);
    }

    /// <summary>Leases for a kind of the test queue as a worker would; a job it got would never finish.</summary>
    private async Task<IReadOnlyList<JobLease>> LeaseAsync(string kind) =>
        (await _server.Get<IJobDispatcher>().LeaseAsync(new LeaseRequest("test-lease-probe", TestJobs.Queue, [kind], 10), CancellationToken.None)).Jobs;

    private async Task<JsonObject> PostAsync(string url)
    {
        using var response = await _server.Admin.PostAsync(url, null);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.True(response.IsSuccessStatusCode, body.ToJsonString());
        return body;
    }
}
