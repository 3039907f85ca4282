using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Media.Images;
using Kiln.Observability;
using ImageJobs = Kiln.Pipelines.ImagePipeline;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Pipelines;

/// <summary>
/// One decode per upload (issue 14): the default pipeline's optimize and thumbnails jobs share one decode, and each job
/// still ends with exactly the result and derivatives it makes alone.
/// </summary>
public sealed class SharedImageDerivativesTests : IAsyncLifetime
{
    private const string Decodes = "kiln_image_decodes_total";

    private KilnServer _server = null!;
    private string _scratch = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Images:ShareDecodeAcrossJobs"] = "true" });
        _scratch = Directory.CreateTempSubdirectory("kiln-shared-decode-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_scratch, recursive: true);
    }

    [Theory]
    [InlineData("2569067123_aca715a2ee_o.jpg")]
    [InlineData("Landscape_6.jpg")]
    [InlineData("alpha-premultiply-2048x1536-paper.png")]
    public async Task An_upload_is_decoded_once_and_each_job_gets_what_it_makes_alone(string file)
    {
        var input = TestPaths.CorpusFile(file);
        var body = await _server.UploadAsync([(file, await File.ReadAllBytesAsync(input, Ct))]);
        var asset = body["assets"]![0]!;
        var jobs = new List<JsonObject>();
        foreach (var job in asset["jobs"]!.AsArray())
        {
            jobs.Add(await _server.WaitForJobAsync(job!["id"]!.GetValue<Guid>(), ["completed", "failed", "cancelled"], TimeSpan.FromSeconds(120)));
        }

        Assert.All(jobs, j => Assert.Equal("completed", j["state"]!.GetValue<string>()));
        var metrics = _server.Get<KilnMetrics>();
        Assert.Equal(1, metrics.CounterValue(Decodes, KilnMetrics.Labels(("kind", ImageJobs.Optimize))) + metrics.CounterValue(Decodes, KilnMetrics.Labels(("kind", ImageJobs.Thumbnails))));

        // What each job reports is what the separate calls make of the same file (sizes, names, formats, bytes saved
        // apart from the thumbnails' bytes, which differ by the decode they were reduced from).
        var alone = ImageThumbnailer.Generate(input, Path.Combine(_scratch, "thumbnails"), ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        var thumbnails = Result(jobs, ImageJobs.Thumbnails)["thumbnails"]!.AsArray();
        Assert.Equal(
            alone.Select(t => (t.Name, t.Width, t.Height)),
            thumbnails.Select(t => (t!["name"]!.GetValue<string>(), t["width"]!.GetValue<int>(), t["height"]!.GetValue<int>())));

        var optimizedAlone = ImageOptimizer.Optimize(input, Path.Combine(_scratch, "optimized"), new OptimizeOptions(), ImageLimits.Default, Ct);
        var optimized = Result(jobs, ImageJobs.Optimize);
        Assert.Equal(
            (optimizedAlone.Format, optimizedAlone.Width, optimizedAlone.Height, optimizedAlone.KeptOriginal, optimizedAlone.OutputBytes),
            (optimized["format"]!.GetValue<string>(), optimized["width"]!.GetValue<int>(), optimized["height"]!.GetValue<int>(), optimized["keptOriginal"]!.GetValue<bool>(), optimized["outputBytes"]!.GetValue<long>()));

        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}", Ct);
        var derivatives = details!["derivatives"]!.AsArray().ToDictionary(d => d!["type"]!.GetValue<string>(), d => d!);
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], derivatives.Keys.Order());
        foreach (var t in alone)
        {
            var bytes = await _server.Admin.GetByteArrayAsync($"/api/files/{derivatives[t.Name]["id"]}/download", Ct);
            var path = Path.Combine(_scratch, t.Name + "-served");
            await File.WriteAllBytesAsync(path, bytes, Ct);
            var served = ImageProbe.Read(path, Ct);
            Assert.Equal((t.Width, t.Height, ImageFamilies.Jpeg, 1), (served.Width, served.Height, served.Format, served.Orientation));
        }
    }

    [Fact]
    public async Task An_image_over_the_shared_decode_limit_is_decoded_per_job_and_still_gets_every_derivative()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Images:ShareDecodeAcrossJobs"] = "true", ["Kiln:Images:SharedDecodeMaxPixels"] = "1000000" });
        var body = await server.UploadAsync([("photo.jpg", await File.ReadAllBytesAsync(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"), Ct))]);
        var asset = body["assets"]![0]!;
        foreach (var job in asset["jobs"]!.AsArray())
        {
            var done = await server.WaitForJobAsync(job!["id"]!.GetValue<Guid>(), ["completed", "failed", "cancelled"], TimeSpan.FromSeconds(120));
            Assert.Equal("completed", done["state"]!.GetValue<string>());
        }

        // 2725x2225 is over 1 MP, so nothing is held: the optimize decodes once, each of the three sizes once.
        var metrics = server.Get<KilnMetrics>();
        Assert.Equal(1, metrics.CounterValue(Decodes, KilnMetrics.Labels(("kind", ImageJobs.Optimize))));
        Assert.Equal(3, metrics.CounterValue(Decodes, KilnMetrics.Labels(("kind", ImageJobs.Thumbnails))));
        var details = await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}", Ct);
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], details!["derivatives"]!.AsArray().Select(d => d!["type"]!.GetValue<string>()).Order());
    }

    private static JsonObject Result(List<JsonObject> jobs, string kind) =>
        jobs.Single(j => j["kind"]!.GetValue<string>() == kind)["result"]!.AsObject();
}
