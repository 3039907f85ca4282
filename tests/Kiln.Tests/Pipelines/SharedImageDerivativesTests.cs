using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Media.Images;
using Kiln.Observability;
using Kiln.Tests.Infrastructure;
using ImageJobs = Kiln.Pipelines.ImagePipeline;

namespace Kiln.Tests.Pipelines;

/// <summary>
/// One decode per upload (issue 14): the default pipeline's optimize and thumbnails jobs share one decode (a PNG, and a
/// JPEG since its thumbnails start from a box average of the full decode), and each job still ends with the result and
/// derivative files it makes alone.
/// </summary>
public sealed class SharedImageDerivativesTests : IAsyncLifetime
{
    private const string Decodes = "kiln_image_decodes_total";
    private const string Png = "alpha-premultiply-2048x1536-paper.png";

    private KilnServer _server = null!;
    private string _scratch = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _server = await KilnServer.StartAsync();
        _scratch = Directory.CreateTempSubdirectory("kiln-shared-decode-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public async Task A_png_upload_is_decoded_once_and_its_derivatives_are_the_files_each_job_makes_alone()
    {
        var (asset, jobs) = await UploadAndWaitAsync(_server, Png);

        // Whichever job starts first decodes for both (counted there); the other adopts what was made for it (0).
        var (optimizeDecodes, thumbnailDecodes) = DecodeCounts(_server);
        Assert.Equal(1, optimizeDecodes + thumbnailDecodes);
        Assert.Equal(0, optimizeDecodes * thumbnailDecodes);

        var input = TestPaths.CorpusFile(Png);
        var alone = ImageThumbnailer.Generate(input, Path.Combine(_scratch, "thumbnails"), ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        var optimizedAlone = ImageOptimizer.Optimize(input, Path.Combine(_scratch, "optimized"), new OptimizeOptions(), ImageLimits.Default, Ct);
        var optimized = Result(jobs, ImageJobs.Optimize);
        Assert.Equal(
            (optimizedAlone.Format, optimizedAlone.Width, optimizedAlone.Height, optimizedAlone.KeptOriginal, optimizedAlone.OutputBytes),
            (optimized["format"]!.GetValue<string>(), optimized["width"]!.GetValue<int>(), optimized["height"]!.GetValue<int>(), optimized["keptOriginal"]!.GetValue<bool>(), optimized["outputBytes"]!.GetValue<long>()));
        Assert.Equal(
            alone.Select(t => (t.Name, t.Width, t.Height, t.Bytes)),
            Result(jobs, ImageJobs.Thumbnails)["thumbnails"]!.AsArray().Select(t => (t!["name"]!.GetValue<string>(), t["width"]!.GetValue<int>(), t["height"]!.GetValue<int>(), t["bytes"]!.GetValue<long>())));

        var derivatives = await DerivativesAsync(_server, asset);
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], derivatives.Keys.Order());
        foreach (var (name, path) in alone.Select(t => (t.Name, t.Path)).Append(("OPTIMIZED", optimizedAlone.OutputPath)))
        {
            var served = await _server.Admin.GetByteArrayAsync($"/api/files/{derivatives[name]["id"]}/download", Ct);
            Assert.Equal(await File.ReadAllBytesAsync(path, Ct), served);
        }
    }

    [Fact]
    public async Task A_jpeg_upload_is_decoded_once_for_both_jobs()
    {
        var (asset, jobs) = await UploadAndWaitAsync(_server, "2569067123_aca715a2ee_o.jpg");

        // The JPEG's thumbnails come from a 2x2 box average of the shared full-size decode, not a second, 1/2 decode.
        var (optimizeDecodes, thumbnailDecodes) = DecodeCounts(_server);
        Assert.Equal(1, optimizeDecodes + thumbnailDecodes);
        Assert.Equal(
            [("THUMBNAIL", 150, 150), ("MEDIUM", 735, 600), ("LARGE", 1323, 1080)],
            Result(jobs, ImageJobs.Thumbnails)["thumbnails"]!.AsArray().Select(t => (t!["name"]!.GetValue<string>(), t["width"]!.GetValue<int>(), t["height"]!.GetValue<int>())));
        Assert.Equal("jpeg", Result(jobs, ImageJobs.Optimize)["format"]!.GetValue<string>());
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], (await DerivativesAsync(_server, asset)).Keys.Order());
    }

    [Fact]
    public async Task A_png_over_the_shared_decode_limit_is_decoded_per_job_and_still_gets_every_derivative()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Images:SharedDecodeMaxPixels"] = "1000000" });

        var (asset, _) = await UploadAndWaitAsync(server, Png);

        // 2048x1536 is over 1 MP, so nothing is held: the optimize decodes twice (colour test, encode), each size once.
        Assert.Equal((2, 3), DecodeCounts(server));
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], (await DerivativesAsync(server, asset)).Keys.Order());
    }

    [Fact]
    public async Task A_retried_thumbnails_job_whose_sibling_already_ran_makes_its_own_from_the_file()
    {
        using (var pause = await _server.Admin.PostAsync("/api/queues/image/pause", null, Ct))
        {
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        }

        var body = await _server.UploadAsync([(Png, await File.ReadAllBytesAsync(TestPaths.CorpusFile(Png), Ct))]);
        var asset = body["assets"]![0]!;
        var ids = asset["jobs"]!.AsArray().Select(j => (Id: j!["id"]!.GetValue<Guid>(), Kind: j["kind"]!.GetValue<string>())).ToList();
        var thumbnails = ids.Single(j => j.Kind == ImageJobs.Thumbnails).Id;
        await _server.WaitForJobAsync(thumbnails, ["queued"], TimeSpan.FromSeconds(60));
        (await _server.Admin.PostAsync($"/api/jobs/{thumbnails}/cancel", null, Ct)).EnsureSuccessStatusCode();
        (await _server.Admin.PostAsync("/api/queues/image/resume", null, Ct)).EnsureSuccessStatusCode();
        var optimize = await _server.WaitForJobAsync(ids.Single(j => j.Kind == ImageJobs.Optimize).Id, ["completed", "failed"], TimeSpan.FromSeconds(120));
        Assert.Equal("completed", optimize["state"]!.GetValue<string>());

        (await _server.Admin.PostAsync($"/api/jobs/{thumbnails}/retry", null, Ct)).EnsureSuccessStatusCode();
        var retried = await _server.WaitForJobAsync(thumbnails, ["completed", "failed"], TimeSpan.FromSeconds(120));

        Assert.Equal("completed", retried["state"]!.GetValue<string>());
        Assert.Equal((2, 1), DecodeCounts(_server));
        var derivatives = await DerivativesAsync(_server, asset);
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], derivatives.Keys.Order());
        var alone = ImageThumbnailer.Generate(TestPaths.CorpusFile(Png), _scratch, ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        foreach (var t in alone)
        {
            Assert.Equal(await File.ReadAllBytesAsync(t.Path, Ct), await _server.Admin.GetByteArrayAsync($"/api/files/{derivatives[t.Name]["id"]}/download", Ct));
        }
    }

    private static async Task<(JsonNode Asset, List<JsonObject> Jobs)> UploadAndWaitAsync(KilnServer server, string file)
    {
        var body = await server.UploadAsync([(file, await File.ReadAllBytesAsync(TestPaths.CorpusFile(file), Ct))]);
        var asset = body["assets"]![0]!;
        var jobs = new List<JsonObject>();
        foreach (var job in asset["jobs"]!.AsArray())
        {
            jobs.Add(await server.WaitForJobAsync(job!["id"]!.GetValue<Guid>(), ["completed", "failed", "cancelled"], TimeSpan.FromSeconds(120)));
        }

        Assert.All(jobs, j => Assert.Equal("completed", j["state"]!.GetValue<string>()));
        return (asset, jobs);
    }

    /// <summary>Decodes of the original counted by the optimize and the thumbnails jobs.</summary>
    private static (double Optimize, double Thumbnails) DecodeCounts(KilnServer server)
    {
        var metrics = server.Get<KilnMetrics>();
        return (
            metrics.CounterValue(Decodes, KilnMetrics.Labels(("kind", ImageJobs.Optimize))),
            metrics.CounterValue(Decodes, KilnMetrics.Labels(("kind", ImageJobs.Thumbnails))));
    }

    private static async Task<Dictionary<string, JsonNode>> DerivativesAsync(KilnServer server, JsonNode asset)
    {
        var details = await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}", Ct);
        return details!["derivatives"]!.AsArray().ToDictionary(d => d!["type"]!.GetValue<string>(), d => d!);
    }

    private static JsonObject Result(List<JsonObject> jobs, string kind) =>
        jobs.Single(j => j["kind"]!.GetValue<string>() == kind)["result"]!.AsObject();
}
