using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Api;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Security;

/// <summary>Two clients, and what the first owns: an asset with a derivative, its jobs and a batch.</summary>
public sealed class TwoOwners : IAsyncLifetime
{
    public KilnServer Server { get; private set; } = null!;

    public HttpClient Alice { get; private set; } = null!;

    public HttpClient Bob { get; private set; } = null!;

    public Guid Asset { get; private set; }

    public Guid Derivative { get; private set; }

    public Guid Batch { get; private set; }

    public Dictionary<string, Guid> Jobs { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Server = await TestJobs.StartServerAsync();
        (Alice, _) = await Server.CreateClientKeyAsync("alice");
        (Bob, _) = await Server.CreateClientKeyAsync("bob");
        (Asset, Jobs) = await TestJobs.UploadAsync(Server, Alice, [TestJobs.Output]);
        await Server.WaitForJobAsync(Jobs[TestJobs.Output], ["completed"], client: Alice);
        var details = await Alice.GetJsonAsync($"/api/assets/{Asset}");
        Derivative = details["derivatives"]![0]!["id"]!.GetValue<Guid>();
        using var batch = await Alice.PostAsJsonAsync("/api/batches", new { assetIds = new[] { Asset }, settings = new { jobs = Array.Empty<string>() } });
        Batch = (await batch.Content.ReadFromJsonAsync<JsonObject>())!["batchId"]!.GetValue<Guid>();
    }

    public async ValueTask DisposeAsync()
    {
        Alice.Dispose();
        Bob.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>A client key sees only what it owns: every other owner's id answers 404, as if it did not exist.</summary>
public sealed class OwnershipTests(TwoOwners owners) : IClassFixture<TwoOwners>
{
    private readonly KilnServer _server = owners.Server;
    private readonly HttpClient _alice = owners.Alice;
    private readonly HttpClient _bob = owners.Bob;
    private readonly Guid _asset = owners.Asset;
    private readonly Guid _derivative = owners.Derivative;
    private readonly Guid _batch = owners.Batch;
    private readonly Dictionary<string, Guid> _jobs = owners.Jobs;

    public static TheoryData<string, string> OwnedEndpoints() => new()
    {
        { "GET", "/api/assets/{asset}" },
        { "DELETE", "/api/assets/{asset}" },
        { "GET", "/api/jobs/{job}" },
        { "POST", "/api/jobs/{job}/cancel" },
        { "POST", "/api/jobs/{job}/pause" },
        { "POST", "/api/jobs/{job}/resume" },
        { "POST", "/api/jobs/{job}/retry" },
        { "GET", "/api/files/{file}" },
        { "GET", "/api/files/{file}/download" },
        { "GET", "/api/files/{file}/content/parts/part1.txt" },
        { "POST", "/api/files/{file}/signed-url" },
        { "GET", "/api/files/{asset}" },
        { "GET", "/api/files/{asset}/download" },
        { "POST", "/api/files/{asset}/signed-url" },
        { "GET", "/api/batches/{batch}" },
    };

    [Theory]
    [MemberData(nameof(OwnedEndpoints))]
    public async Task Another_clients_id_answers_404_and_changes_nothing(string method, string template)
    {
        var url = Fill(template);
        using var response = await _bob.SendAsync(new HttpRequestMessage(new HttpMethod(method), url));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", await JobEndpointTests.ErrorCodeAsync(response));

        // The owner still has it, untouched.
        Assert.Equal(HttpStatusCode.OK, (await _alice.GetAsync($"/api/assets/{_asset}")).StatusCode);
        var job = await _alice.GetJsonAsync($"/api/jobs/{_jobs[TestJobs.Output]}");
        Assert.Equal("completed", job["state"]!.GetValue<string>());
    }

    public static TheoryData<string> OwnedReads() => [.. OwnedEndpoints().Select(row => row.Data).Where(d => d.Item1 == "GET").Select(d => d.Item2)];

    [Theory]
    [MemberData(nameof(OwnedReads))]
    public async Task The_owner_and_an_admin_reach_the_same_ids(string template)
    {
        foreach (var client in new[] { _alice, _server.Admin })
        {
            using var response = await client.GetAsync(Fill(template));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task Lists_hold_only_the_callers_own_items()
    {
        var (bobsAsset, _) = await TestJobs.UploadAsync(_server, _bob, []);
        Assert.Contains(bobsAsset, (await _bob.GetFromJsonAsync<JsonArray>("/api/assets"))!.Select(a => a!["id"]!.GetValue<Guid>()));

        var bobsJobs = await _bob.GetJsonAsync("/api/jobs?pageSize=500");
        Assert.DoesNotContain(bobsJobs["items"]!.AsArray(), j => j!["assetId"]!.GetValue<Guid>() == _asset);
        Assert.Contains(bobsJobs["items"]!.AsArray(), j => j!["assetId"]!.GetValue<Guid>() == bobsAsset);
        Assert.Equal(0, (await _bob.GetJsonAsync($"/api/jobs?assetId={_asset}"))["total"]!.GetValue<long>());
        Assert.DoesNotContain(_asset, (await _bob.GetFromJsonAsync<JsonArray>("/api/assets"))!.Select(a => a!["id"]!.GetValue<Guid>()));

        var all = (await _server.Admin.GetFromJsonAsync<JsonArray>("/api/assets"))!.Select(a => a!["id"]!.GetValue<Guid>()).ToList();
        Assert.Contains(_asset, all);
        Assert.Contains(bobsAsset, all);
    }

    [Fact]
    public async Task A_batch_over_another_clients_asset_answers_404()
    {
        var before = (await _alice.GetJsonAsync($"/api/jobs?assetId={_asset}"))["total"]!.GetValue<long>();
        using var response = await _bob.PostAsJsonAsync("/api/batches", new { assetIds = new[] { _asset } });
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(before, (await _alice.GetJsonAsync($"/api/jobs?assetId={_asset}"))["total"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("POST", "/api/queues/test/pause")]
    [InlineData("POST", "/api/queues/test/resume")]
    [InlineData("POST", "/api/queues/test/retry-failed")]
    [InlineData("POST", "/api/queues/test/clean")]
    [InlineData("PATCH", "/api/queues/test")]
    public async Task Admin_only_endpoints_answer_403_to_a_client(string method, string url)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method == "PATCH")
        {
            request.Content = JsonContent.Create(new { concurrency = 1 });
        }

        using var response = await _alice.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("auth.forbidden", await JobEndpointTests.ErrorCodeAsync(response));
        var queue = await _server.Admin.GetJsonAsync("/api/queues/test");
        Assert.False(queue["paused"]!.GetValue<bool>());
        Assert.Equal(0, queue["concurrency"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_worker_token_cannot_use_the_client_api()
    {
        var worker = await _server.Get<Kiln.Security.ApiKeyStore>().CreateAsync("w", Kiln.Security.Roles.Worker, CancellationToken.None);
        using var client = _server.CreateClient(worker.Secret);
        using var response = await client.GetAsync("/api/jobs");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    private string Fill(string template) => template
        .Replace("{asset}", _asset.ToString(), StringComparison.Ordinal)
        .Replace("{job}", _jobs[TestJobs.Output].ToString(), StringComparison.Ordinal)
        .Replace("{file}", _derivative.ToString(), StringComparison.Ordinal)
        .Replace("{batch}", _batch.ToString(), StringComparison.Ordinal);
}
