using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Tests.Infrastructure;
using Kiln.Tests.Tus;

namespace Kiln.Tests.Api;

/// <summary>
/// Job params are checked when the job is asked for (upload, batch, tus, download), by the same reader the job
/// runs with: a bad value or an unknown key is a 400 naming the kind and the key, and nothing is created.
/// </summary>
public sealed partial class ParamsValidationTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Quality_500_at_upload_is_refused_with_400_naming_the_kind_and_the_key_and_stores_nothing()
    {
        using var response = await UploadAsync("""{"params":{"image.optimize":{"quality":500}}}""");
        var problem = await ProblemAsync(response);
        Assert.Equal("upload.bad_params", problem["errorCode"]!.GetValue<string>());
        Assert.Equal(
            "Job kind 'image.optimize': param 'quality' must be a whole number from 1 to 100 (got 500).",
            problem["detail"]!.GetValue<string>());
        Assert.Empty((await _server.Admin.GetFromJsonAsync<JsonArray>("/api/assets"))!);
    }

    [Fact]
    public async Task An_unknown_param_at_upload_is_refused_naming_it_and_the_known_ones()
    {
        using var response = await UploadAsync("""{"params":{"image.thumbnails":{"sizes":[{"name":"a","width":9,"height":9,"colour":"red"}]}}}""");
        var problem = await ProblemAsync(response);
        Assert.Equal("upload.bad_params", problem["errorCode"]!.GetValue<string>());
        Assert.Equal(
            "Job kind 'image.thumbnails': unknown param 'sizes[0].colour'; its params are name, width, height, fit, format, quality.",
            problem["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task Params_for_the_probe_are_refused_because_it_takes_none()
    {
        using var response = await UploadAsync("""{"params":{"probe":{"deep":true}}}""");
        var problem = await ProblemAsync(response);
        Assert.Equal(("upload.bad_params", "Job kind 'probe': unknown param 'deep'; it takes no params."), (problem["errorCode"]!.GetValue<string>(), problem["detail"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Good_params_are_accepted_and_the_job_runs_with_them()
    {
        using var response = await UploadAsync("""{"jobs":["image.thumbnails"],"params":{"image.thumbnails":{"sizes":[{"name":"tiny","width":40,"height":40,"fit":"cover","format":"webp"}]}}}""");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var asset = (await response.Content.ReadFromJsonAsync<JsonObject>())!["assets"]![0]!;
        var jobId = asset["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "image.thumbnails")!["id"]!.GetValue<Guid>();
        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(60));
        Assert.Equal("completed", job["state"]!.GetValue<string>());
        var tiny = Assert.Single(job["result"]!["thumbnails"]!.AsArray())!;
        Assert.Equal(("TINY", 40, 40), (tiny["name"]!.GetValue<string>(), tiny["width"]!.GetValue<int>(), tiny["height"]!.GetValue<int>()));
    }

    [Fact]
    public async Task A_batch_with_bad_params_is_refused_and_creates_no_batch()
    {
        using var upload = await UploadAsync("""{"jobs":["image.optimize"]}""");
        var assetId = (await upload.Content.ReadFromJsonAsync<JsonObject>())!["assets"]![0]!["id"]!.GetValue<Guid>();

        using var response = await _server.Admin.PostAsync("/api/batches", Json(
            """{"assetIds":["ASSET"],"settings":{"jobs":["image.optimize"],"params":{"image.optimize":{"format":"gif"}}}}""".Replace("ASSET", assetId.ToString(), StringComparison.Ordinal)));
        var problem = await ProblemAsync(response);
        Assert.Equal("batch.bad_params", problem["errorCode"]!.GetValue<string>());
        Assert.Equal("Job kind 'image.optimize': param 'format' must be one of auto, jpeg, webp, avif, png (got \"gif\").", problem["detail"]!.GetValue<string>());
        var jobs = (await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}"))!["jobs"]!.AsArray();
        Assert.Equal(2, jobs.Count);
    }

    [Fact]
    public async Task A_tus_upload_with_bad_params_is_refused_at_creation()
    {
        var tus = new TusTestClient(_server.Admin);
        using var response = await tus.SendCreateAsync(10, TusTestClient.Metadata(("settings", """{"params":{"video.hls":{"segmentSeconds":0}}}""")));
        var problem = await ProblemAsync(response);
        Assert.Equal("tus.bad_params", problem["errorCode"]!.GetValue<string>());
        Assert.Equal("Job kind 'video.hls': param 'segmentSeconds' must be a whole number from 1 to 30 (got 0).", problem["detail"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_download_with_bad_params_is_refused_before_its_fetch_job_exists()
    {
        using var response = await _server.Admin.PostAsync("/api/downloads", Json("""{"url":"https://example.com/a.jpg","settings":{"params":{"audio.optimize":{"bitrateKbps":"loud"}}}}"""));
        var problem = await ProblemAsync(response);
        Assert.Equal("fetch.bad_params", problem["errorCode"]!.GetValue<string>());
        Assert.Equal("Job kind 'audio.optimize': param 'bitrateKbps' must be a whole number from 6 to 512 (got \"loud\").", problem["detail"]!.GetValue<string>());
    }

    /// <summary>
    /// docs/api.md holds the table of every kind's params between markers, generated from the readers' own
    /// declarations; run with <c>KILN_WRITE_DOCS=1</c> to rewrite it after changing a reader.
    /// </summary>
    [Fact]
    public async Task The_params_table_in_docs_api_md_is_the_one_the_readers_declare()
    {
        var expected = ParamsTable(_server.Get<JobKindCatalog>());
        var path = Path.Combine(TestPaths.RepoRoot, "docs", "api.md");
        var doc = await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken);
        var block = TableBlock().Match(doc);
        Assert.True(block.Success, "docs/api.md has no <!-- job-params:begin --> … <!-- job-params:end --> block.");
        if (Environment.GetEnvironmentVariable("KILN_WRITE_DOCS") == "1")
        {
            var table = block.Groups["table"];
            doc = string.Concat(doc.AsSpan(0, table.Index), expected, doc.AsSpan(table.Index + table.Length));
            await File.WriteAllTextAsync(path, doc, TestContext.Current.CancellationToken);
            return;
        }

        Assert.Equal(expected, block.Groups["table"].Value);
    }

    private static string ParamsTable(JobKindCatalog catalog)
    {
        var table = new StringBuilder("\n| kind | param | type | allowed | default |\n| --- | --- | --- | --- | --- |\n");
        foreach (var kind in catalog.All.Where(k => k.Params is not null).OrderBy(k => k.Kind, StringComparer.Ordinal))
        {
            var declared = JobParams.Describe(kind.Params!);
            if (declared.Count == 0)
            {
                table.Append($"| `{kind.Kind}` | — | | takes no params | |\n");
            }

            foreach (var p in declared)
            {
                table.Append($"| `{kind.Kind}` | `{p.Name}` | {p.Type} | {p.Allowed.Replace("|", "\\|", StringComparison.Ordinal)} | {(p.Default is null ? "—" : $"`{p.Default}`")} |\n");
            }
        }

        return table.ToString();
    }

    [GeneratedRegex("<!-- job-params:begin -->(?<table>.*?)<!-- job-params:end -->", RegexOptions.Singleline)]
    private static partial Regex TableBlock();

    private async Task<HttpResponseMessage> UploadAsync(string settings)
    {
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(await File.ReadAllBytesAsync(TestPaths.CorpusFile("4.webp"))), "file", "4.webp" },
            { new StringContent(settings), "settings" },
        };
        return await _server.Admin.PostAsync("/api/uploads", form);
    }

    private static async Task<JsonObject> ProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
