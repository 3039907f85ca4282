using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Media.Images;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Pipelines;

/// <summary>Upload → image jobs → derivatives, through the HTTP API with real libvips; outputs checked with libvips.</summary>
public sealed class ImagePipelineTests : IAsyncLifetime
{
    private KilnServer _server = null!;
    private string _downloads = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Images:MaxPixels"] = "20000000" });
        _downloads = Directory.CreateTempSubdirectory("kiln-image-e2e-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_downloads, recursive: true);
    }

    [Fact]
    public async Task An_uploaded_photo_gets_three_upright_thumbnails_and_an_optimized_copy()
    {
        var body = await _server.UploadAsync([("photo.jpg", await File.ReadAllBytesAsync(TestPaths.CorpusFile("Landscape_6.jpg")))]);
        var asset = body["assets"]![0]!;
        var jobs = await WaitForAllAsync(asset);
        Assert.All(jobs, j => Assert.Equal("completed", j["state"]!.GetValue<string>()));
        Assert.DoesNotContain(jobs, j => j["kind"]!.GetValue<string>() == "image.enhance");

        var derivatives = await DerivativesAsync(asset);
        Assert.Equal(["LARGE", "MEDIUM", "OPTIMIZED", "THUMBNAIL"], derivatives.Keys.Order().ToArray());
        var thumb = ImageProbe.Read(await DownloadAsync(derivatives["THUMBNAIL"]), TestContext.Current.CancellationToken);
        Assert.Equal((150, 150, "jpeg"), (thumb.Width, thumb.Height, thumb.Format));
        var medium = ImageProbe.Read(await DownloadAsync(derivatives["MEDIUM"]), TestContext.Current.CancellationToken);
        Assert.Equal((600, 450), (medium.Width, medium.Height));
        Assert.Equal(1, medium.Orientation);
        var large = ImageProbe.Read(await DownloadAsync(derivatives["LARGE"]), TestContext.Current.CancellationToken);
        Assert.Equal((600, 450), (large.Width, large.Height));

        var optimize = jobs.Single(j => j["kind"]!.GetValue<string>() == "image.optimize");
        Assert.Equal(optimize["result"]!["originalBytes"]!.GetValue<long>() - optimize["result"]!["outputBytes"]!.GetValue<long>(), optimize["result"]!["bytesSaved"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_category_in_the_enhance_list_adds_an_enhanced_derivative()
    {
        var body = await _server.UploadAsync([("display.jpg", await File.ReadAllBytesAsync(TestPaths.CorpusFile("Landscape_1.jpg")))], category: "DISP");
        var asset = body["assets"]![0]!;
        await WaitForAllAsync(asset);
        var derivatives = await DerivativesAsync(asset);
        var enhanced = ImageProbe.Read(await DownloadAsync(derivatives["ENHANCED"]), TestContext.Current.CancellationToken);
        Assert.Equal((600, 450), (enhanced.Width, enhanced.Height));
    }

    [Fact]
    public async Task Settings_choose_the_jobs_and_their_params()
    {
        var settings = JsonNode.Parse("""{"jobs":["image.optimize"],"params":{"image.optimize":{"format":"png","maxWidth":100}}}""")!.AsObject();
        var body = await _server.UploadAsync([("paper.png", await File.ReadAllBytesAsync(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png")))], settings);
        var asset = body["assets"]![0]!;
        await WaitForAllAsync(asset);
        var derivatives = await DerivativesAsync(asset);
        Assert.Equal(["OPTIMIZED"], derivatives.Keys.ToArray());
        var optimized = ImageProbe.Read(await DownloadAsync(derivatives["OPTIMIZED"]), TestContext.Current.CancellationToken);
        Assert.Equal((100, 75, "png", true), (optimized.Width, optimized.Height, optimized.Format, optimized.HasAlpha));
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("garbage")]
    [InlineData("too_large")]
    public async Task A_bad_image_fails_its_probe_with_a_clear_code_and_gets_no_derivative(string kind)
    {
        var real = await File.ReadAllBytesAsync(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"));
        var bytes = kind switch
        {
            "truncated" => real[..(real.Length / 3)],
            "garbage" => [0xFF, 0xD8, 0xFF, .. Enumerable.Range(0, 5000).Select(i => (byte)(i * 31 % 251))],
            _ => await File.ReadAllBytesAsync(await HugeImageAsync()),
        };
        var body = await _server.UploadAsync([("bad.jpg", bytes)]);
        var asset = body["assets"]![0]!;
        var jobs = await WaitForAllAsync(asset);
        var failedCodes = jobs.Where(j => j["state"]!.GetValue<string>() == "failed").Select(j => j["errorCode"]!.GetValue<string>()).ToList();
        Assert.NotEmpty(failedCodes);
        Assert.Contains(failedCodes, c => c is "image.corrupt" or "image.too_large" or "image.unsupported");
        Assert.Empty(await DerivativesAsync(asset));
    }

    private async Task<string> HugeImageAsync()
    {
        // 6000x4000 = 24 MP, over the 20 MP limit set for this class; a flat JPEG stays small on disk. Made with
        // ffmpeg, which the suite's machines have (the vips CLI they may not).
        var path = Path.Combine(_downloads, "huge.jpg");
        using var process = System.Diagnostics.Process.Start("ffmpeg", ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=black:s=6000x4000", "-frames:v", "1", "-q:v", "10", path]);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return path;
    }

    private async Task<List<JsonObject>> WaitForAllAsync(JsonNode asset)
    {
        var jobs = new List<JsonObject>();
        foreach (var job in asset["jobs"]!.AsArray())
        {
            jobs.Add(await _server.WaitForJobAsync(job!["id"]!.GetValue<Guid>(), ["completed", "failed", "cancelled"], TimeSpan.FromSeconds(60)));
        }

        return jobs;
    }

    private async Task<Dictionary<string, Guid>> DerivativesAsync(JsonNode asset)
    {
        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}");
        return details!["derivatives"]!.AsArray().ToDictionary(d => d!["type"]!.GetValue<string>(), d => d!["id"]!.GetValue<Guid>());
    }

    private async Task<string> DownloadAsync(Guid fileId)
    {
        var path = Path.Combine(_downloads, fileId.ToString("N"));
        await File.WriteAllBytesAsync(path, await _server.Admin.GetByteArrayAsync($"/api/files/{fileId}/download"));
        return path;
    }
}
