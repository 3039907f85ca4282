using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
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
        Assert.Equal("upload.not_multipart", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
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
        Assert.Equal("upload.bad_settings", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
    }
}
