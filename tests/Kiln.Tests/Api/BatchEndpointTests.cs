using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;

namespace Kiln.Tests.Api;

public sealed class BatchEndpointTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly Infrastructure.KilnServer _server = fixture.Server;

    [Fact]
    public async Task A_batch_of_existing_assets_runs_one_pipeline_and_reports_aggregate_progress()
    {
        var a = (await TestJobs.UploadAsync(_server, _server.Admin, [])).AssetId;
        var b = (await TestJobs.UploadAsync(_server, _server.Admin, [])).AssetId;

        using var response = await _server.Admin.PostAsJsonAsync("/api/batches", new { assetIds = new[] { a, b }, settings = new { jobs = new[] { TestJobs.Output, TestJobs.Gate } } });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var batchId = body["batchId"]!.GetValue<Guid>();
        Assert.Equal($"/api/batches/{batchId}", response.Headers.Location!.ToString());
        Assert.Equal([a, b], body["assets"]!.AsArray().Select(x => x!["id"]!.GetValue<Guid>()));
        Assert.All(body["assets"]!.AsArray(), x => Assert.Equal(
            ["probe", TestJobs.Output, TestJobs.Gate], x!["jobs"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>())));

        // Two probes and two outputs finish; the two gate jobs hold at 25 %: (4 × 100 + 2 × 25) / 6 = 75.
        var gates = body["assets"]!.AsArray().Select(x => x!["jobs"]![2]!["id"]!.GetValue<Guid>()).ToList();
        foreach (var gate in gates)
        {
            await WaitForProgressAsync(gate, 25);
        }

        var summary = await WaitForBatchAsync(batchId, s => s["byState"]?["completed"]?.GetValue<long>() == 4);
        Assert.Equal(6, summary["total"]!.GetValue<long>());
        Assert.Equal(2, summary["byState"]!["running"]!.GetValue<long>());
        Assert.Equal(75, summary["progress"]!.GetValue<double>());
        Assert.False(summary["finished"]!.GetValue<bool>());

        foreach (var gate in gates)
        {
            await _server.Admin.PostAsync($"/api/jobs/{gate}/cancel", null);
        }

        var done = await WaitForBatchAsync(batchId, s => s["finished"]!.GetValue<bool>());
        Assert.Equal(100, done["progress"]!.GetValue<double>());
        Assert.Equal(2, done["byState"]!["cancelled"]!.GetValue<long>());
        Assert.Equal(TestJobs.Output, done["pipeline"]!["jobs"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task A_batch_of_new_files_is_uploaded_as_multipart_to_the_same_endpoint()
    {
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(Encoding.UTF8.GetBytes("one")), "file", "one.txt" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes("two")), "file", "two.txt" },
            { new StringContent("""{"jobs":["test.output"]}"""), "settings" },
        };
        using var response = await _server.Admin.PostAsync("/api/batches", form);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var batchId = body["batchId"]!.GetValue<Guid>();
        Assert.Equal(["one.txt", "two.txt"], body["assets"]!.AsArray().Select(x => x!["name"]!.GetValue<string>()));

        var done = await WaitForBatchAsync(batchId, s => s["finished"]!.GetValue<bool>());
        Assert.Equal(4, done["byState"]!["completed"]!.GetValue<long>());
        Assert.Equal(100, done["progress"]!.GetValue<double>());

        var jobs = await _server.Admin.GetJsonAsync($"/api/jobs?batchId={batchId}");
        Assert.Equal(4, jobs["total"]!.GetValue<long>());
    }

    [Fact]
    public async Task Uploads_with_batch_true_make_a_batch_too()
    {
        using var form = new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "file", "x.bin" } };
        using var response = await _server.Admin.PostAsync("/api/uploads?batch=true", form);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var batchId = body["batchId"]!.GetValue<Guid>();
        var summary = await WaitForBatchAsync(batchId, s => s["finished"]!.GetValue<bool>());
        Assert.Equal(1, summary["total"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("""{"assetIds":[]}""", "batch.no_assets")]
    [InlineData("""{"settings":{}}""", "batch.no_assets")]
    [InlineData("""{"assetIds":["00000000-0000-0000-0000-000000000001"],"settings":{"jobs":["nope"]}}""", "batch.bad_settings")]
    [InlineData("""{"assetIds":"x"}""", "bad_request")]
    [InlineData("""{not json""", "bad_request")]
    public async Task A_bad_batch_request_answers_400_with_a_code(string json, string code)
    {
        using var response = await _server.Admin.PostAsync("/api/batches", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(code, await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task A_batch_naming_an_unknown_asset_answers_404_and_creates_nothing()
    {
        using var response = await _server.Admin.PostAsJsonAsync("/api/batches", new { assetIds = new[] { Guid.NewGuid() } });
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task A_batch_body_of_another_media_type_answers_415()
    {
        using var response = await _server.Admin.PostAsync("/api/batches", new StringContent("assetIds=1", Encoding.UTF8, "text/plain"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("unsupported_media_type", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task An_unknown_batch_answers_404()
    {
        using var response = await _server.Admin.GetAsync($"/api/batches/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private Task<JsonObject> WaitForProgressAsync(Guid job, double progress) =>
        Poll.UntilAsync(() => _server.Admin.GetJsonAsync($"/api/jobs/{job}"), j => j["progress"]!.GetValue<double>() >= progress, $"job {job} to reach {progress} %");

    private Task<JsonObject> WaitForBatchAsync(Guid batchId, Func<JsonObject, bool> done) =>
        Poll.UntilAsync(() => _server.Admin.GetJsonAsync($"/api/batches/{batchId}"), done, $"batch {batchId} to get there");
}
