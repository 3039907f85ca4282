using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;

namespace Kiln.Tests.Api;

public sealed class AssetEndpointTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly Infrastructure.KilnServer _server = fixture.Server;

    [Fact]
    public async Task An_asset_is_shown_with_its_derivatives_and_jobs()
    {
        var (asset, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Output], "data.bin", parameters: new JsonObject { [TestJobs.Output] = new JsonObject { ["bytes"] = 1234 } });
        await _server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);

        var details = await _server.Admin.GetJsonAsync($"/api/assets/{asset}");
        Assert.Equal(asset, details["asset"]!["id"]!.GetValue<Guid>());
        Assert.Equal("data.bin", details["asset"]!["originalName"]!.GetValue<string>());
        Assert.Equal("other", details["asset"]!["kind"]!.GetValue<string>());
        var derivative = Assert.Single(details["derivatives"]!.AsArray())!;
        Assert.Equal("TEST", derivative["type"]!.GetValue<string>());
        Assert.Equal(1234, derivative["size"]!.GetValue<long>());
        Assert.Equal(jobs[TestJobs.Output], derivative["jobId"]!.GetValue<Guid>());
        Assert.Equal(
            new[] { jobs["probe"], jobs[TestJobs.Output] }.Order(),
            details["jobs"]!.AsArray().Select(j => j!["id"]!.GetValue<Guid>()).Order());
        Assert.All(details["jobs"]!.AsArray(), j => Assert.Equal("completed", j!["state"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Deleting_an_asset_removes_its_rows_and_every_file_from_disk()
    {
        var (asset, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Output]);
        await _server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
        var originalDir = Path.Combine(_server.DataDirectory, "originals", asset.ToString("N"));
        var derivativeDir = Path.Combine(_server.DataDirectory, "derivatives", asset.ToString("N"));
        Assert.True(File.Exists(Path.Combine(originalDir, "original")));
        Assert.NotEmpty(Directory.EnumerateFiles(derivativeDir, "*", SearchOption.AllDirectories));

        using var deleted = await _server.Admin.DeleteAsync($"/api/assets/{asset}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);

        Assert.False(Directory.Exists(originalDir), "the original's directory is gone");
        Assert.False(Directory.Exists(derivativeDir), "the derivatives' directory is gone");
        foreach (var url in new[] { $"/api/assets/{asset}", $"/api/jobs/{jobs[TestJobs.Output]}", $"/api/files/{asset}" })
        {
            using var gone = await _server.Admin.GetAsync(url);
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }

        using var again = await _server.Admin.DeleteAsync($"/api/assets/{asset}");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal("not_found", await JobEndpointTests.ErrorCodeAsync(again));
    }

    [Fact]
    public async Task Deleting_an_asset_stops_its_running_job()
    {
        var (asset, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Gate]);
        await _server.WaitForJobAsync(jobs[TestJobs.Gate], ["running"]);

        using var deleted = await _server.Admin.DeleteAsync($"/api/assets/{asset}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);

        var running = await Poll.UntilAsync(
            () => _server.Admin.GetJsonAsync($"/api/queues/{TestJobs.Queue}"), q => q["active"]!.GetValue<long>() == 0, "the deleted asset's job to stop");

        Assert.Equal(0, running["active"]!.GetValue<long>());
        Assert.False(Directory.Exists(Path.Combine(_server.DataDirectory, "originals", asset.ToString("N"))));
    }

    [Fact]
    public async Task Assets_are_listed_newest_first_in_pages()
    {
        var (client, _) = await _server.CreateClientKeyAsync("lister");
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await TestJobs.UploadAsync(_server, client, [], $"f{i}.bin")).AssetId);
        }

        var first = await client.GetFromJsonAsync<JsonArray>("/api/assets?pageSize=2");
        var second = await client.GetFromJsonAsync<JsonArray>("/api/assets?pageSize=2&page=2");
        Assert.Equal([ids[2], ids[1]], first!.Select(a => a!["id"]!.GetValue<Guid>()));
        Assert.Equal([ids[0]], second!.Select(a => a!["id"]!.GetValue<Guid>()));

        using var bad = await client.GetAsync("/api/assets?pageSize=501");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("assets.bad_page", await JobEndpointTests.ErrorCodeAsync(bad));
    }

    [Fact]
    public async Task Assets_are_filtered_by_kind_category_tag_state_and_searched_by_name_or_id()
    {
        var (client, _) = await _server.CreateClientKeyAsync("filterer");
        var done = await UploadTaggedAsync(client, "holiday_100.bin", "DISP", "sea,sun", TestJobs.Output);
        var failed = await UploadTaggedAsync(client, "report.bin", "DOCS", "sun", TestJobs.Fail);
        var running = await UploadTaggedAsync(client, "holidayX100.bin", "DISP", "snow", TestJobs.Gate);
        try
        {
            await _server.WaitForJobAsync(done.Job, ["completed"], client: client);
            await _server.WaitForJobAsync(failed.Job, ["failed"], client: client);

            async Task<Guid[]> ListAsync(string query) =>
                (await client.GetFromJsonAsync<JsonArray>("/api/assets?" + query))!.Select(a => a!["id"]!.GetValue<Guid>()).ToArray();

            Assert.Equal([running.Asset, done.Asset], await ListAsync("category=DISP"));
            Assert.Equal([failed.Asset, done.Asset], await ListAsync("tag=sun"));
            Assert.Equal([running.Asset], await ListAsync("state=processing"));
            Assert.Equal([failed.Asset], await ListAsync("state=failed"));
            Assert.Equal([done.Asset], await ListAsync("state=done"));
            Assert.Equal([running.Asset, failed.Asset, done.Asset], await ListAsync("kind=other"));
            Assert.Empty(await ListAsync("kind=image"));
            Assert.Equal([running.Asset, done.Asset], await ListAsync("q=HOLIDAY"));
            Assert.Equal([done.Asset], await ListAsync("q=y_1")); // _ is a literal character, not LIKE's any-character
            Assert.Equal([failed.Asset], await ListAsync($"q={failed.Asset}"));
            Assert.Equal([done.Asset], await ListAsync("category=DISP&state=done&tag=sea"));

            using var bad = await client.GetAsync("/api/assets?state=sleeping");
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal("assets.bad_filter", await JobEndpointTests.ErrorCodeAsync(bad));
            using var badKind = await client.GetAsync("/api/assets?kind=pdf");
            Assert.Equal("assets.bad_filter", await JobEndpointTests.ErrorCodeAsync(badKind));
        }
        finally
        {
            // The gate job would otherwise hold a slot of the shared fixture's test queue for the other tests.
            (await client.PostAsync($"/api/jobs/{running.Job}/cancel", null)).Dispose();
        }
    }

    /// <summary>Uploads a small file with a category and tags that runs one test job; returns the asset and that job.</summary>
    private static async Task<(Guid Asset, Guid Job)> UploadTaggedAsync(HttpClient client, string name, string category, string tags, string kind)
    {
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent([1, 2, 3, 4, 5, 6, 7, 8]), "file", name },
            { new StringContent(new JsonObject { ["jobs"] = new JsonArray(kind) }.ToJsonString()), "settings" },
            { new StringContent(category), "category" },
            { new StringContent(tags), "tags" },
        };
        using var response = await client.PostAsync("/api/uploads", form);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var asset = (await response.Content.ReadFromJsonAsync<JsonObject>())!["assets"]![0]!;
        var job = asset["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == kind)!["id"]!.GetValue<Guid>();
        return (asset["id"]!.GetValue<Guid>(), job);
    }
}
