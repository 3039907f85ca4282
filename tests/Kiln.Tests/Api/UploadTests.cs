using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Api;

public sealed class UploadTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Uploads:MaxFileBytes"] = "300000" });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_upload_is_stored_and_probed_with_its_size_hash_and_kind_from_content()
    {
        var bytes = await File.ReadAllBytesAsync(TestPaths.CorpusFile("Landscape_3.jpg"));
        var body = await _server.UploadAsync([("holiday.png", bytes)], new JsonObject { ["jobs"] = new JsonArray() });

        var asset = body["assets"]![0]!;
        Assert.Equal("image", asset["kind"]!.GetValue<string>());
        Assert.Equal("image/jpeg", asset["contentType"]!.GetValue<string>());
        var probeId = asset["jobs"]![0]!["id"]!.GetValue<Guid>();
        var probe = await _server.WaitForJobAsync(probeId, ["completed", "failed"]);
        Assert.Equal("completed", probe["state"]!.GetValue<string>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), probe["result"]!["sha256"]!.GetValue<string>());
        Assert.Equal(bytes.Length, probe["result"]!["size"]!.GetValue<long>());

        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}");
        Assert.Equal("holiday.png", details!["asset"]!["originalName"]!.GetValue<string>());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), details["asset"]!["sha256"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_file_over_the_size_limit_is_refused_with_413_and_nothing_is_kept()
    {
        using var form = new MultipartFormDataContent { { new ByteArrayContent(new byte[400_000]), "file", "big.bin" } };
        using var response = await _server.Admin.PostAsync("/api/uploads", form);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal("upload.too_large", problem!["errorCode"]!.GetValue<string>());
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_server.DataDirectory, "tmp", "uploads")));
        Assert.False(Directory.Exists(Path.Combine(_server.DataDirectory, "originals")) && Directory.EnumerateFileSystemEntries(Path.Combine(_server.DataDirectory, "originals")).Any());
    }

    [Fact]
    public async Task A_body_that_is_not_multipart_is_refused_with_415()
    {
        using var response = await _server.Admin.PostAsync("/api/uploads", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Equal("unsupported_media_type", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());

        // multipart/form-data without a boundary passes routing and is refused by the reader.
        using var noBoundary = new StringContent("x");
        noBoundary.Headers.ContentType = new MediaTypeHeaderValue("multipart/form-data");
        using var second = await _server.Admin.PostAsync("/api/uploads", noBoundary);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, second.StatusCode);
        Assert.Equal("upload.not_multipart", (await second.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task Unknown_settings_are_refused_with_a_clear_code()
    {
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent([1, 2, 3]), "file", "x.bin" },
            { new StringContent("""{"jobs":["no.such.kind"]}"""), "settings" },
        };
        using var response = await _server.Admin.PostAsync("/api/uploads", form);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("upload.bad_settings", problem["errorCode"]!.GetValue<string>());
        Assert.Contains("'no.such.kind'; valid kinds: ", problem["detail"]!.GetValue<string>());
        Assert.Contains("image.thumbnails", problem["detail"]!.GetValue<string>());
        Assert.Contains("video.hls", problem["detail"]!.GetValue<string>());
    }
}

public sealed class UploadFormTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly KilnServer _server = fixture.Server;

    [Fact]
    public async Task Several_files_with_settings_and_a_category_answer_202_with_each_asset_and_its_jobs()
    {
        var png = await File.ReadAllBytesAsync(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"));
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(png), "file", "photo.jpg" },
            { new ByteArrayContent(Encoding.UTF8.GetBytes("plain text")), "file", "notes.txt" },
            { new StringContent("""{"jobs":["test.output"],"priority":3}"""), "settings" },
            { new StringContent("DISP"), "category" },
            { new StringContent("a, b,a"), "tags" },
        };
        using var response = await _server.Admin.PostAsync("/api/uploads", form);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Null(body["batchId"]);
        var assets = body["assets"]!.AsArray();
        Assert.Equal(2, assets.Count);
        Assert.Equal(("photo.jpg", "image", "image/png", png.Length), Describe(assets[0]!));
        Assert.Equal(("notes.txt", "other", "application/octet-stream", 10), Describe(assets[1]!));
        foreach (var asset in assets)
        {
            Assert.Equal(["probe", "test.output"], asset!["jobs"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>()));
            Assert.Equal(["queued", "waiting"], asset["jobs"]!.AsArray().Select(j => j!["state"]!.GetValue<string>()));
            var details = await _server.Admin.GetJsonAsync($"/api/assets/{asset["id"]}");
            Assert.Equal("DISP", details["asset"]!["category"]!.GetValue<string>());
            Assert.Equal(["a", "b"], details["asset"]!["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
            Assert.All(details["jobs"]!.AsArray(), j => Assert.Equal(3, j!["priority"]!.GetValue<int>()));
        }

        static (string, string, string, long) Describe(JsonNode a) =>
            (a["name"]!.GetValue<string>(), a["kind"]!.GetValue<string>(), a["contentType"]!.GetValue<string>(), a["size"]!.GetValue<long>());
    }

    [Theory]
    [InlineData("../../etc/passwd", "passwd")]
    [InlineData("..\\..\\windows\\win.ini", "win.ini")]
    [InlineData("/abs/path/file.txt", "file.txt")]
    [InlineData("bad\u0001na\u001fme\u007f.txt", "badname.txt")]
    [InlineData("what?<>:|*\".txt", "what.txt")]
    [InlineData("..", "upload")]
    [InlineData(".hidden", "hidden")]
    [InlineData("café ünïcode.jpg", "café ünïcode.jpg")]
    public async Task File_names_are_sanitized_and_never_reach_the_file_system(string name, string expected)
    {
        using var form = new MultipartFormDataContent();
        var part = new ByteArrayContent([1, 2, 3]);
        part.Headers.ContentDisposition = new ContentDispositionHeaderValue("form-data") { Name = "\"file\"", FileNameStar = name };
        form.Add(part);
        using var response = await _server.Admin.PostAsync("/api/uploads", form);
        var body = (await response.Content.ReadFromJsonAsync<JsonObject>())!;

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var asset = body["assets"]![0]!;
        Assert.Equal(expected, asset["name"]!.GetValue<string>());
        var stored = Path.Combine(_server.DataDirectory, "originals", asset["id"]!.GetValue<Guid>().ToString("N"), "original");
        Assert.Equal(new byte[] { 1, 2, 3 }, await File.ReadAllBytesAsync(stored));
    }

    [Fact]
    public void A_long_file_name_is_cut_to_200_characters()
    {
        Assert.Equal(200, Kiln.Assets.FileNames.Sanitize(new string('x', 500) + ".jpg").Length);
    }

    [Theory]
    [InlineData("tags", "no spaces allowed", HttpStatusCode.BadRequest, "upload.bad_tags")]
    [InlineData("category", "../x", HttpStatusCode.BadRequest, "upload.bad_category")]
    [InlineData("settings", "[1,2]", HttpStatusCode.BadRequest, "upload.bad_settings")]
    [InlineData("settings", "{broken", HttpStatusCode.BadRequest, "upload.bad_settings")]
    [InlineData("settings", """{"colour":"red"}""", HttpStatusCode.BadRequest, "upload.bad_settings")]
    [InlineData("surprise", "x", HttpStatusCode.BadRequest, "upload.unknown_field")]
    public async Task Bad_form_fields_are_refused_with_a_code_and_leave_no_file(string field, string value, HttpStatusCode status, string code)
    {
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent([1, 2, 3]), "file", "x.bin" },
            { new StringContent(value), field },
        };
        using var response = await _server.Admin.PostAsync("/api/uploads", form);
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, await JobEndpointTests.ErrorCodeAsync(response));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_server.DataDirectory, "tmp", "uploads")));
    }

    [Fact]
    public async Task An_upload_without_files_or_with_an_empty_file_is_refused()
    {
        using var noFiles = new MultipartFormDataContent { { new StringContent("DISP"), "category" } };
        using var none = await _server.Admin.PostAsync("/api/uploads", noFiles);
        Assert.Equal(HttpStatusCode.BadRequest, none.StatusCode);
        Assert.Equal("upload.no_files", await JobEndpointTests.ErrorCodeAsync(none));

        using var emptyFile = new MultipartFormDataContent { { new ByteArrayContent([]), "file", "empty.bin" } };
        using var empty = await _server.Admin.PostAsync("/api/uploads", emptyFile);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Equal("upload.empty_file", await JobEndpointTests.ErrorCodeAsync(empty));
    }
}

public sealed class UploadLimitTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync(new Dictionary<string, string?>
    {
        ["Kiln:Uploads:MaxFileBytes"] = "1000",
        ["Kiln:Uploads:MaxRequestBytes"] = "5000",
        ["Kiln:Uploads:MaxFiles"] = "3",
    });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task More_files_than_allowed_answer_413()
    {
        using var form = new MultipartFormDataContent();
        for (var i = 0; i < 4; i++)
        {
            form.Add(new ByteArrayContent([1]), "file", $"{i}.bin");
        }

        using var response = await _server.Admin.PostAsync("/api/uploads", form);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("upload.too_many_files", await JobEndpointTests.ErrorCodeAsync(response));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_server.DataDirectory, "tmp", "uploads")));
    }

    [Fact]
    public async Task A_declared_body_over_the_request_limit_answers_413_before_reading_it()
    {
        using var form = new MultipartFormDataContent();
        for (var i = 0; i < 3; i++)
        {
            form.Add(new ByteArrayContent(new byte[900]), "file", $"{i}.bin");
        }

        form.Add(new StringContent(new string('x', 3000)), "tags");
        using var response = await _server.Admin.PostAsync("/api/uploads", form);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("upload.too_large", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task A_chunked_body_over_the_request_limit_answers_413_while_streaming()
    {
        using var form = new MultipartFormDataContent();
        for (var i = 0; i < 3; i++)
        {
            form.Add(new ByteArrayContent(new byte[900]), "file", $"{i}.bin");
        }

        form.Add(new StringContent(new string('x', 3000)), "tags");
        using var chunked = new StreamContent(await form.ReadAsStreamAsync());
        chunked.Headers.ContentType = form.Headers.ContentType;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/uploads") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("upload.too_large", await JobEndpointTests.ErrorCodeAsync(response));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_server.DataDirectory, "tmp", "uploads")));
    }
}
