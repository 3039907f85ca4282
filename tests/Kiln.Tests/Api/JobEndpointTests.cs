using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;

namespace Kiln.Tests.Api;

public sealed class JobEndpointTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly Infrastructure.KilnServer _server = fixture.Server;

    [Fact]
    public async Task Jobs_are_listed_with_filters_on_state_kind_queue_and_asset()
    {
        var (held, heldJobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Gate]);
        var (failing, failJobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Fail]);
        await _server.WaitForJobAsync(failJobs[TestJobs.Fail], ["failed"]);
        await _server.WaitForJobAsync(heldJobs[TestJobs.Gate], ["running"]);

        var byAsset = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={held}");
        Assert.Equal(2, byAsset["total"]!.GetValue<long>());
        Assert.Equal(
            new[] { heldJobs["probe"], heldJobs[TestJobs.Gate] }.Order(),
            byAsset["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()).Order());

        var failedOfAsset = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={failing}&state=failed");
        var failed = Assert.Single(failedOfAsset["items"]!.AsArray());
        Assert.Equal(failJobs[TestJobs.Fail], failed!["id"]!.GetValue<Guid>());
        Assert.Equal("test_failure", failed["errorCode"]!.GetValue<string>());

        var running = await _server.Admin.GetJsonAsync($"/api/jobs?kind={TestJobs.Gate}&queue={TestJobs.Queue}&state=running");
        Assert.Contains(heldJobs[TestJobs.Gate], running["items"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()));
        Assert.All(running["items"]!.AsArray(), j => Assert.Equal(TestJobs.Gate, j!["kind"]!.GetValue<string>()));

        var otherQueue = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={held}&queue=default");
        Assert.Equal("probe", Assert.Single(otherQueue["items"]!.AsArray())!["kind"]!.GetValue<string>());

        await _server.Admin.PostAsync($"/api/jobs/{heldJobs[TestJobs.Gate]}/cancel", null);
    }

    [Fact]
    public async Task Jobs_are_paged_and_sorted_by_the_requested_field()
    {
        var (asset, _) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Output, TestJobs.Fail]);

        var all = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={asset}&sort=kind");
        Assert.Equal(["probe", TestJobs.Fail, TestJobs.Output], all["items"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>()));
        var descending = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={asset}&sort=-kind");
        Assert.Equal([TestJobs.Output, TestJobs.Fail, "probe"], descending["items"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>()));

        var page2 = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={asset}&sort=kind&page=2&pageSize=2");
        Assert.Equal(3, page2["total"]!.GetValue<long>());
        Assert.Equal(2, page2["page"]!.GetValue<int>());
        Assert.Equal(2, page2["pageSize"]!.GetValue<int>());
        Assert.Equal(TestJobs.Output, Assert.Single(page2["items"]!.AsArray())!["kind"]!.GetValue<string>());

        var beyond = await _server.Admin.GetJsonAsync($"/api/jobs?assetId={asset}&page=9&pageSize=2");
        Assert.Empty(beyond["items"]!.AsArray());
        Assert.Equal(3, beyond["total"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("state=done", "jobs.bad_state")]
    [InlineData("sort=owner_id", "jobs.bad_sort")]
    [InlineData("pageSize=0", "jobs.bad_page")]
    [InlineData("page=0", "jobs.bad_page")]
    [InlineData("assetId=not-a-guid", "bad_request")]
    public async Task Bad_list_parameters_answer_400_with_a_code(string query, string code)
    {
        using var response = await _server.Admin.GetAsync("/api/jobs?" + query);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(code, await ErrorCodeAsync(response));
    }

    [Fact]
    public async Task A_job_is_read_by_id_and_an_unknown_id_answers_404()
    {
        var (asset, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, []);
        var probe = await _server.WaitForJobAsync(jobs["probe"], ["completed"]);
        Assert.Equal(asset, probe["assetId"]!.GetValue<Guid>());
        Assert.Equal("probe", probe["kind"]!.GetValue<string>());
        Assert.Equal(100, probe["progress"]!.GetValue<double>());

        using var missing = await _server.Admin.GetAsync($"/api/jobs/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("not_found", await ErrorCodeAsync(missing));
    }

    [Fact]
    public async Task A_running_job_is_paused_resumed_cancelled_and_retried_and_invalid_transitions_answer_409()
    {
        var (_, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Gate]);
        var id = jobs[TestJobs.Gate];
        await _server.WaitForJobAsync(id, ["running"]);

        Assert.Equal("paused", await CommandAsync(id, "pause", HttpStatusCode.OK));
        Assert.Equal("job.not_retryable", await CommandAsync(id, "retry", HttpStatusCode.Conflict));
        Assert.Equal("job.not_pausable", await CommandAsync(id, "pause", HttpStatusCode.Conflict));

        var resumed = await CommandAsync(id, "resume", HttpStatusCode.OK);
        Assert.True(resumed is "queued" or "running", resumed);
        await _server.WaitForJobAsync(id, ["running"]);
        Assert.Equal("job.not_paused", await CommandAsync(id, "resume", HttpStatusCode.Conflict));
        Assert.Equal("job.not_retryable", await CommandAsync(id, "retry", HttpStatusCode.Conflict));

        Assert.Equal("cancelled", await CommandAsync(id, "cancel", HttpStatusCode.OK));
        Assert.Equal("job.not_cancellable", await CommandAsync(id, "cancel", HttpStatusCode.Conflict));
        Assert.Equal("job.not_pausable", await CommandAsync(id, "pause", HttpStatusCode.Conflict));

        var retried = await CommandAsync(id, "retry", HttpStatusCode.OK);
        Assert.True(retried is "queued" or "running", retried);
        await _server.WaitForJobAsync(id, ["running"]);
        Assert.Equal("cancelled", await CommandAsync(id, "cancel", HttpStatusCode.OK));
    }

    [Fact]
    public async Task A_conflict_names_the_current_state()
    {
        var (_, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, []);
        await _server.WaitForJobAsync(jobs["probe"], ["completed"]);

        using var response = await _server.Admin.PostAsync($"/api/jobs/{jobs["probe"]}/cancel", null);
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal("job.not_cancellable", problem!["errorCode"]!.GetValue<string>());
        Assert.Equal("completed", problem["state"]!.GetValue<string>());
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task Commands_on_an_unknown_job_answer_404()
    {
        foreach (var command in new[] { "cancel", "pause", "resume", "retry" })
        {
            using var response = await _server.Admin.PostAsync($"/api/jobs/{Guid.NewGuid()}/{command}", null);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", await ErrorCodeAsync(response));
        }
    }

    /// <summary>Runs a command; returns the new state on success or the error code otherwise.</summary>
    private async Task<string> CommandAsync(Guid id, string command, HttpStatusCode expected)
    {
        using var response = await _server.Admin.PostAsync($"/api/jobs/{id}/{command}", null);
        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.True(expected == response.StatusCode, $"{command}: {(int)response.StatusCode} {body}");
        return expected == HttpStatusCode.OK ? body!["state"]!.GetValue<string>() : body!["errorCode"]!.GetValue<string>();
    }

    internal static async Task<string?> ErrorCodeAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonObject>())?["errorCode"]?.GetValue<string>();
}
