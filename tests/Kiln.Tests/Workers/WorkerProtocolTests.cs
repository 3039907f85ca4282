using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Security;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;
using Npgsql;

namespace Kiln.Tests.Workers;

/// <summary>The server side of the worker protocol, driven by hand: every bad message is refused, counted and never written.</summary>
public sealed class WorkerProtocolTests : IAsyncLifetime
{
    private KilnServer _server = null!;
    private string _token = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            [TestKinds.Setting] = "true",
            ["Kiln:RemoteWorkers:MaxMessageBytes"] = "4096",
        });
        _token = (await _server.Get<ApiKeyStore>().CreateAsync("protocol worker", Roles.Worker, CancellationToken.None)).Secret;
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_worker_is_welcomed_with_the_kinds_the_server_knows_and_pushed_a_lease_without_asking()
    {
        var (client, welcome) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "w1", [TestKinds.Sleep, "no.such.kind"], 1);
        await using var _ = client;
        var jobId = await EnqueueAsync();

        var lease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == jobId);

        Assert.Equal([TestKinds.Sleep], welcome["kinds"]!.AsArray().Select(k => k!.GetValue<string>()));
        Assert.Equal(["no.such.kind"], welcome["ignoredKinds"]!.AsArray().Select(k => k!.GetValue<string>()));
        Assert.StartsWith("remote:w1@", welcome["workerId"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(TestKinds.Sleep, lease["kind"]!.GetValue<string>());
        Assert.Equal(1, lease["attempt"]!.GetValue<int>());
        Assert.Equal(25, lease["params"]!["durationMs"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(lease["token"]!.GetValue<string>()));
        var job = await JobAsync(jobId);
        Assert.Equal("running", job["state"]!.GetValue<string>());
        Assert.Equal(welcome["workerId"]!.GetValue<string>(), job["leaseOwner"]!.GetValue<string>());
    }

    [Fact]
    public async Task Progress_and_completion_from_the_lease_holder_are_written()
    {
        var (client, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "w2", [TestKinds.Sleep], 1);
        await using var _ = client;
        var jobId = await EnqueueAsync();
        var lease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == jobId);

        await client.SendAsync(Progress(lease, 42.5, "half"));
        await Poll.UntilAsync(() => JobAsync(jobId), j => j["progress"]!.GetValue<double>() == 42.5, "progress 42.5");
        await client.SendAsync(new JsonObject { ["type"] = "complete", ["jobId"] = jobId, ["leaseId"] = LeaseId(lease), ["result"] = new JsonObject { ["ok"] = true } });
        await client.WaitForAsync("ack", m => m["jobId"]!.GetValue<Guid>() == jobId);

        var job = await JobAsync(jobId);
        Assert.Equal("completed", job["state"]!.GetValue<string>());
        Assert.True(job["result"]!["ok"]!.GetValue<bool>());
        Assert.Equal("half", job["stage"]!.GetValue<string>());
    }

    [Fact]
    public async Task Forged_leases_other_workers_jobs_and_out_of_range_progress_are_rejected_counted_and_not_written()
    {
        var (mine, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "mine", [TestKinds.Sleep], 1);
        await using var _1 = mine;
        var myJob = await EnqueueAsync();
        var myLease = await mine.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == myJob);
        var (theirs, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "theirs", [TestKinds.Sleep], 1);
        await using var _2 = theirs;
        var theirJob = await EnqueueAsync();
        var theirLease = await theirs.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == theirJob);
        var before = Rejected("unknown_lease");

        // A made-up lease for my own job, the other worker's job with its real lease, and progress outside 0–100.
        await mine.SendAsync(new JsonObject { ["type"] = "progress", ["jobId"] = myJob, ["leaseId"] = Guid.NewGuid(), ["progress"] = 50 });
        await mine.SendAsync(Progress(theirLease, 60, "stolen"));
        await mine.SendAsync(new JsonObject { ["type"] = "complete", ["jobId"] = theirJob, ["leaseId"] = LeaseId(theirLease) });
        await mine.SendAsync(Progress(myLease, 150, "too far"));
        await mine.SendAsync(Progress(myLease, -1, "backwards"));
        await mine.WaitForAsync("rejected", m => m["code"]!.GetValue<string>() == "progress_out_of_range", skip: 1);

        Assert.Equal(3, mine.Rejections("unknown_lease"));
        Assert.Equal(2, mine.Rejections("progress_out_of_range"));
        Assert.Equal(before + 3, Rejected("unknown_lease"));
        foreach (var id in new[] { myJob, theirJob })
        {
            var job = await JobAsync(id);
            Assert.Equal("running", job["state"]!.GetValue<string>());
            Assert.Equal(0, job["progress"]!.GetValue<double>());
            Assert.Null(job["stage"]);
        }
    }

    [Fact]
    public async Task Oversized_malformed_and_unknown_messages_are_rejected_and_the_connection_stays_usable()
    {
        var (client, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "noisy", [TestKinds.Sleep], 1);
        await using var _ = client;
        var jobId = await EnqueueAsync();
        var lease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == jobId);
        var tooLargeBefore = Rejected("too_large");

        await client.SendAsync(Progress(lease, 10, new string('x', 8000)));
        await client.SendRawAsync("{\"type\":\"progress\",");
        await client.SendRawAsync("[1,2,3]");
        await client.SendAsync(new JsonObject { ["type"] = "teleport", ["jobId"] = jobId });
        await client.SendAsync(new JsonObject { ["type"] = "progress", ["jobId"] = "not-a-guid", ["leaseId"] = LeaseId(lease), ["progress"] = 5 });
        await client.SendAsync(new JsonObject { ["type"] = "progress", ["jobId"] = jobId, ["leaseId"] = LeaseId(lease), ["progress"] = "lots" });
        await client.SendAsync(new JsonObject { ["type"] = "hello", ["name"] = "again", ["version"] = "1", ["kinds"] = new JsonArray("x"), ["slots"] = 1, ["protocol"] = 1 });
        await client.SendAsync(Progress(lease, 33, "fine"));
        await Poll.UntilAsync(() => JobAsync(jobId), j => j["progress"]!.GetValue<double>() == 33, "progress 33");
        // Rejections travel back over the socket while the progress goes to the database: the last one may still be
        // on its way. The server answers in order, so once the last has arrived, all have.
        await Poll.UntilAsync(() => client.Rejections("duplicate_hello") == 1, "one duplicate_hello rejection");

        Assert.Equal(1, client.Rejections("too_large"));
        Assert.Equal(2, client.Rejections("malformed"));
        Assert.Equal(1, client.Rejections("unknown_type"));
        Assert.Equal(2, client.Rejections("invalid_field"));
        Assert.Equal(1, client.Rejections("duplicate_hello"));
        Assert.Equal(tooLargeBefore + 1, Rejected("too_large"));
        Assert.Equal("fine", (await JobAsync(jobId))["stage"]!.GetValue<string>());
    }

    [Fact]
    public async Task Messages_about_a_job_after_its_completion_are_rejected_and_change_nothing()
    {
        var (client, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "late", [TestKinds.Sleep], 1);
        await using var _ = client;
        var jobId = await EnqueueAsync();
        var lease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == jobId);
        await client.SendAsync(new JsonObject { ["type"] = "complete", ["jobId"] = jobId, ["leaseId"] = LeaseId(lease) });
        await client.WaitForAsync("ack", m => m["jobId"]!.GetValue<Guid>() == jobId);
        var completed = await JobAsync(jobId);

        await client.SendAsync(Progress(lease, 10, "after"));
        await client.SendAsync(new JsonObject { ["type"] = "fail", ["jobId"] = jobId, ["leaseId"] = LeaseId(lease), ["errorCode"] = "late", ["message"] = "too late" });
        await client.SendAsync(new JsonObject { ["type"] = "complete", ["jobId"] = jobId, ["leaseId"] = LeaseId(lease), ["result"] = new JsonObject { ["again"] = true } });
        await client.WaitForAsync("rejected", m => m["of"]?.GetValue<string>() == "complete");

        Assert.Equal(3, client.Rejections("unknown_lease"));
        var job = await JobAsync(jobId);
        Assert.Equal("completed", job["state"]!.GetValue<string>());
        Assert.Equal(100, job["progress"]!.GetValue<double>());
        Assert.Null(job["errorCode"]);
        Assert.Null(job["result"]);
        Assert.Equal(completed["finishedAt"]!.GetValue<DateTimeOffset>(), job["finishedAt"]!.GetValue<DateTimeOffset>());
    }

    [Fact]
    public async Task A_connection_that_does_not_start_with_hello_is_refused_and_closed()
    {
        await using var client = await RawWorkerClient.ConnectAsync(_server.BaseAddress, _token);
        await client.SendAsync(new JsonObject { ["type"] = "heartbeat" });

        var rejected = await client.WaitForAsync("rejected");
        await client.WaitClosedAsync(TimeSpan.FromSeconds(10));

        Assert.Equal("hello_required", rejected["code"]!.GetValue<string>());
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.PolicyViolation, client.CloseStatus);
    }

    [Fact]
    public async Task Only_worker_tokens_may_connect()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => RawWorkerClient.ConnectAsync(_server.BaseAddress, _server.AdminKey));
        Assert.Contains("403", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_worker_that_disconnects_loses_its_lease_and_the_attempt_counts()
    {
        var (client, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "vanishing", [TestKinds.Sleep], 1);
        var jobId = await EnqueueAsync(maxAttempts: 1);
        await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == jobId);

        await client.DisposeAsync();

        var job = await _server.WaitForJobAsync(jobId, ["failed"]);
        Assert.Equal("worker_lost", job["errorCode"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_job_token_opens_only_its_own_jobs_files_and_only_while_the_lease_is_held()
    {
        var (client, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "files", [TestKinds.Sleep], 2);
        await using var _ = client;
        var first = await EnqueueAsync();
        var second = await EnqueueAsync();
        var firstLease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == first);
        var secondLease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == second);
        using var http = _server.CreateClient(_token);

        var own = await PutAsync(http, first, firstLease["token"]!.GetValue<string>(), "a/out.txt");
        var crossed = await PutAsync(http, second, firstLease["token"]!.GetValue<string>(), "out.txt");
        var escaping = await PutAsync(http, first, firstLease["token"]!.GetValue<string>(), "..%5Cescape.txt");
        await client.SendAsync(new JsonObject { ["type"] = "fail", ["jobId"] = second, ["leaseId"] = LeaseId(secondLease), ["errorCode"] = "nope", ["message"] = "no", ["retryable"] = false });
        await client.WaitForAsync("ack", m => m["jobId"]!.GetValue<Guid>() == second);
        var afterEnd = await PutAsync(http, second, secondLease["token"]!.GetValue<string>(), "out.txt");

        Assert.Equal(HttpStatusCode.OK, own);
        Assert.Equal(HttpStatusCode.Forbidden, crossed);
        Assert.Equal(HttpStatusCode.BadRequest, escaping);
        Assert.Equal(HttpStatusCode.Conflict, afterEnd);
        var staged = Path.Combine(_server.DataDirectory, "tmp", "jobs", first.ToString("N"), "out-" + LeaseId(firstLease).ToString("N")[..8], "a", "out.txt");
        Assert.Equal("hello", await File.ReadAllTextAsync(staged));
    }

    [Fact]
    public async Task A_completion_naming_outputs_that_were_never_uploaded_fails_the_job_without_publishing_anything()
    {
        var (client, _) = await RawWorkerClient.HelloAsync(_server.BaseAddress, _token, "liar", [TestKinds.Sleep], 1);
        await using var _ = client;
        var jobId = await EnqueueAsync();
        var lease = await client.WaitForAsync("lease", m => m["jobId"]!.GetValue<Guid>() == jobId);
        var outputs = new JsonArray(new JsonObject { ["type"] = "TEST", ["path"] = "missing.txt", ["contentType"] = "text/plain" });

        await client.SendAsync(new JsonObject { ["type"] = "complete", ["jobId"] = jobId, ["leaseId"] = LeaseId(lease), ["outputs"] = outputs });

        var job = await _server.WaitForJobAsync(jobId, ["failed"]);
        var rejected = await client.WaitForAsync("rejected");
        Assert.Equal("invalid_output", rejected["code"]!.GetValue<string>());
        Assert.Equal("invalid_output", job["errorCode"]!.GetValue<string>());
        Assert.False(Directory.Exists(Path.Combine(_server.DataDirectory, "derivatives")) && Directory.EnumerateFileSystemEntries(Path.Combine(_server.DataDirectory, "derivatives")).Any());
    }

    private static async Task<HttpStatusCode> PutAsync(HttpClient http, Guid jobId, string token, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/api/workers/jobs/{jobId}/outputs/{path}") { Content = new StringContent("hello") };
        request.Headers.Add("X-Kiln-Job-Token", token);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static JsonObject Progress(JsonObject lease, double progress, string stage) => new()
    {
        ["type"] = "progress",
        ["jobId"] = lease["jobId"]!.GetValue<Guid>(),
        ["leaseId"] = LeaseId(lease),
        ["progress"] = progress,
        ["stage"] = stage,
    };

    private static Guid LeaseId(JsonObject lease) => lease["leaseId"]!.GetValue<Guid>();

    private double Rejected(string reason) =>
        _server.Get<KilnMetrics>().CounterValue("kiln_rejected_messages_total", KilnMetrics.Labels(("source", "remote_worker"), ("reason", reason)));

    private async Task<JsonObject> JobAsync(Guid id) => (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/jobs/{id}"))!;

    private async Task<Guid> EnqueueAsync(int maxAttempts = 3)
    {
        var job = new NewJob { Kind = TestKinds.Sleep, Queue = TestKinds.Queue, Params = new JsonObject { ["durationMs"] = 25 }, MaxAttempts = maxAttempts };
        await _server.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        return job.Id;
    }

}
