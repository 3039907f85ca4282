using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Observability;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Tus;

public sealed class TusUploadTests : IAsyncLifetime
{
    private const string NoDerivatives = """{"jobs":[]}""";
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() =>
        _server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Uploads:MaxFileBytes"] = "8000000",
            ["Kiln:Tus:MaxPartialUploadsPerKey"] = "3",
        });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Options_announces_the_protocol_version_extensions_and_size_limit_without_a_key()
    {
        using var anonymous = _server.CreateClient();
        using var response = await anonymous.SendAsync(new HttpRequestMessage(HttpMethod.Options, "/api/tus"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("1.0.0", response.Headers.GetValues("Tus-Resumable").Single());
        Assert.Equal("1.0.0", response.Headers.GetValues("Tus-Version").Single());
        Assert.Equal("creation,termination,expiration", response.Headers.GetValues("Tus-Extension").Single());
        Assert.Equal("8000000", response.Headers.GetValues("Tus-Max-Size").Single());
    }

    [Fact]
    public async Task A_jpeg_sent_in_chunks_becomes_an_image_asset_with_its_jobs_and_the_same_bytes()
    {
        var (client, _) = await _server.CreateClientKeyAsync();
        var tus = new TusTestClient(client);
        var bytes = await File.ReadAllBytesAsync(TestPaths.CorpusFile("Landscape_3.jpg"));
        using var created = await tus.SendCreateAsync(bytes.Length, TusTestClient.Metadata(("filename", "holiday.jpg"), ("category", "trips"), ("tags", "sea, summer")));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var location = created.Headers.Location!.OriginalString;
        Assert.Matches("^/api/tus/[0-9a-f-]{36}$", location);
        Assert.True(created.Headers.TryGetValues("Upload-Expires", out var expires) && DateTimeOffset.Parse(expires.Single(), System.Globalization.CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow.AddHours(23));
        Assert.Equal(0, await tus.OffsetAsync(location));

        var chunk = bytes.Length / 3 + 1;
        HttpResponseMessage? last = null;
        for (var offset = 0; offset < bytes.Length; offset += chunk)
        {
            var length = Math.Min(chunk, bytes.Length - offset);
            last?.Dispose();
            last = await tus.PatchAsync(location, offset, bytes.AsMemory(offset, length));
            Assert.Equal(HttpStatusCode.NoContent, last.StatusCode);
            Assert.Equal((offset + length).ToString(System.Globalization.CultureInfo.InvariantCulture), last.Headers.GetValues("Upload-Offset").Single());
            Assert.Equal(offset + length == bytes.Length, last.Headers.Contains("Kiln-Asset-Id"));
        }

        var assetId = Guid.Parse(last!.Headers.GetValues("Kiln-Asset-Id").Single());
        last.Dispose();
        using (var head = await tus.HeadAsync(location))
        {
            Assert.Equal(assetId.ToString(), head.Headers.GetValues("Kiln-Asset-Id").Single());
            Assert.Equal(bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), head.Headers.GetValues("Upload-Offset").Single());
            Assert.Equal("no-store", head.Headers.CacheControl!.ToString());
            Assert.Equal(TusTestClient.Metadata(("filename", "holiday.jpg"), ("category", "trips"), ("tags", "sea,summer")), head.Headers.GetValues("Upload-Metadata").Single());
        }

        var details = (await client.GetFromJsonAsync<JsonObject>($"/api/assets/{assetId}"))!;
        Assert.Equal("image", details["asset"]!["kind"]!.GetValue<string>());
        Assert.Equal("image/jpeg", details["asset"]!["contentType"]!.GetValue<string>());
        Assert.Equal("holiday.jpg", details["asset"]!["originalName"]!.GetValue<string>());
        Assert.Equal("trips", details["asset"]!["category"]!.GetValue<string>());
        Assert.Equal(["sea", "summer"], details["asset"]!["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
        var kinds = details["jobs"]!.AsArray().Select(j => j!["kind"]!.GetValue<string>()).ToList();
        Assert.Contains("probe", kinds);
        Assert.Contains(kinds, k => k.StartsWith("image.", StringComparison.Ordinal));
        Assert.Equal(Sha256(bytes), Sha256(await File.ReadAllBytesAsync(OriginalPath(assetId))));
        Assert.False(File.Exists(PartialPath(location)));
    }

    [Fact]
    public async Task An_interrupted_patch_keeps_the_bytes_that_arrived_and_the_upload_resumes_from_there_writing_each_byte_once()
    {
        var (client, _) = await _server.CreateClientKeyAsync();
        var tus = new TusTestClient(client);
        var source = RandomNumberGenerator.GetBytes(3_000_000);
        var location = await tus.CreateAsync(source.Length, TusTestClient.Metadata(("filename", "data.bin"), ("settings", NoDerivatives)));
        var metrics = _server.Get<KilnMetrics>();
        var writtenBefore = metrics.CounterValue("kiln_tus_bytes_written_total", "");

        // Send 1.2 MB of a 2 MB chunk, wait until the server has them on disk, then drop the connection.
        const int sentBeforeDrop = 1_200_000;
        using (var cts = new CancellationTokenSource())
        {
            var content = new StallingContent(source[..2_000_000], sentBeforeDrop);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(TusTestClient.ContentType);
            using var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = content };
            request.Headers.Add("Tus-Resumable", "1.0.0");
            request.Headers.Add("Upload-Offset", "0");
            var patch = client.SendAsync(request, cts.Token);
            await content.Sent;
            await Poll.UntilAsync(async () => await tus.OffsetAsync(location) == sentBeforeDrop, "the first bytes reach the file while the PATCH is open");

            // While that PATCH still holds the upload, another one (a second tab, a retry) cannot interleave its bytes.
            using (var concurrent = await tus.PatchAsync(location, sentBeforeDrop, source.AsMemory(sentBeforeDrop, 1000)))
            {
                Assert.Equal(HttpStatusCode.Locked, concurrent.StatusCode);
                Assert.Equal("tus.locked", await ErrorCodeAsync(concurrent));
            }

            // The lock is not on the data file: once the last byte arrives that file is the asset's original, and a
            // job reading it (the probe opens it as below) used to meet the lock and fail while the ingest ran.
            await using (var reader = new FileStream(PartialPath(location), FileMode.Open, FileAccess.Read, FileShare.Read))
            {
                Assert.Equal(sentBeforeDrop, reader.Length);
            }

            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => patch);
        }

        Assert.Equal(sentBeforeDrop, await tus.OffsetAsync(location));
        using var final = await tus.ResumeAsync(location, source, 1_000_000);
        var assetId = Guid.Parse(final.Headers.GetValues("Kiln-Asset-Id").Single());

        Assert.Equal(Sha256(source), Sha256(await File.ReadAllBytesAsync(OriginalPath(assetId))));
        Assert.Equal(source.Length, metrics.CounterValue("kiln_tus_bytes_written_total", "") - writtenBefore);
    }

    [Fact]
    public async Task Termination_deletes_the_partial_file_and_the_id_is_gone()
    {
        var (client, _) = await _server.CreateClientKeyAsync();
        var tus = new TusTestClient(client);
        var location = await tus.CreateAsync(1000, TusTestClient.Metadata(("settings", NoDerivatives)));
        using (var patch = await tus.PatchAsync(location, 0, new byte[400]))
        {
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        Assert.Equal(400, new FileInfo(PartialPath(location)).Length);
        using (var delete = new HttpRequestMessage(HttpMethod.Delete, location))
        {
            delete.Headers.Add("Tus-Resumable", "1.0.0");
            using var response = await client.SendAsync(delete);
            Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        }

        Assert.False(File.Exists(PartialPath(location)));
        using var head = await tus.HeadAsync(location);
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
    }

    [Fact]
    public async Task Another_keys_upload_answers_404_to_head_patch_and_delete()
    {
        var (owner, _) = await _server.CreateClientKeyAsync("owner");
        var (stranger, _) = await _server.CreateClientKeyAsync("stranger");
        var location = await new TusTestClient(owner).CreateAsync(10);
        var tus = new TusTestClient(stranger);

        using var head = await tus.HeadAsync(location);
        using var patch = await tus.PatchAsync(location, 0, new byte[10]);
        using var delete = new HttpRequestMessage(HttpMethod.Delete, location);
        delete.Headers.Add("Tus-Resumable", "1.0.0");
        using var deleted = await stranger.SendAsync(delete);
        using var unknown = await tus.HeadAsync($"/api/tus/{Guid.NewGuid()}");

        Assert.All([head, patch, deleted, unknown], r => Assert.Equal(HttpStatusCode.NotFound, r.StatusCode));
        Assert.Equal("tus.not_found", await ErrorCodeAsync(patch));
        Assert.Equal(0, await new TusTestClient(owner).OffsetAsync(location));
    }

    [Fact]
    public async Task Protocol_errors_answer_their_tus_status_and_code()
    {
        var (client, _) = await _server.CreateClientKeyAsync();
        var tus = new TusTestClient(client);
        var location = await tus.CreateAsync(100);
        using (var first = await tus.PatchAsync(location, 0, new byte[10]))
        {
            Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);
        }

        using var noVersion = await tus.PatchAsync(location, 10, new byte[10], version: null);
        Assert.Equal(HttpStatusCode.PreconditionFailed, noVersion.StatusCode);
        Assert.Equal("1.0.0", noVersion.Headers.GetValues("Tus-Version").Single());
        Assert.Equal("tus.unsupported_version", await ErrorCodeAsync(noVersion));

        using var oldVersion = await tus.PatchAsync(location, 10, new byte[10], version: "0.2.2");
        Assert.Equal(HttpStatusCode.PreconditionFailed, oldVersion.StatusCode);

        using var wrongType = await tus.PatchAsync(location, 10, new byte[10], contentType: "application/octet-stream");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, wrongType.StatusCode);
        Assert.Equal("tus.bad_content_type", await ErrorCodeAsync(wrongType));

        using var wrongOffset = await tus.PatchAsync(location, 5, new byte[10]);
        Assert.Equal(HttpStatusCode.Conflict, wrongOffset.StatusCode);
        Assert.Equal("tus.offset_mismatch", await ErrorCodeAsync(wrongOffset));

        using var pastEnd = await tus.PatchAsync(location, 10, new byte[91]);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, pastEnd.StatusCode);
        Assert.Equal("tus.too_large", await ErrorCodeAsync(pastEnd));
        Assert.Equal(10, await tus.OffsetAsync(location));

        using var tooLong = await tus.SendCreateAsync(8_000_001);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLong.StatusCode);
        Assert.Equal("tus.too_large", await ErrorCodeAsync(tooLong));

        using var noLength = await tus.SendCreateAsync(null);
        Assert.Equal("tus.length_required", await ErrorCodeAsync(noLength));

        using var badMetadata = await tus.SendCreateAsync(10, "filename not-base64!");
        Assert.Equal(HttpStatusCode.BadRequest, badMetadata.StatusCode);
        Assert.Equal("tus.bad_metadata", await ErrorCodeAsync(badMetadata));

        using var badSettings = await tus.SendCreateAsync(10, TusTestClient.Metadata(("settings", """{"jobs":["no.such.kind"]}""")));
        Assert.Equal("tus.bad_settings", await ErrorCodeAsync(badSettings));

        using var badCategory = await tus.SendCreateAsync(10, TusTestClient.Metadata(("category", "no spaces please")));
        Assert.Equal("tus.bad_category", await ErrorCodeAsync(badCategory));
    }

    [Fact]
    public async Task A_key_may_have_only_the_configured_number_of_unfinished_uploads()
    {
        var (client, _) = await _server.CreateClientKeyAsync();
        var tus = new TusTestClient(client);
        for (var i = 0; i < 3; i++)
        {
            await tus.CreateAsync(10);
        }

        using var fourth = await tus.SendCreateAsync(10);
        Assert.Equal(HttpStatusCode.TooManyRequests, fourth.StatusCode);
        Assert.Equal("tus.too_many_uploads", await ErrorCodeAsync(fourth));

        // Another key is not affected.
        var (other, _) = await _server.CreateClientKeyAsync();
        await new TusTestClient(other).CreateAsync(10);
    }

    [Fact]
    public async Task Worker_keys_may_not_upload_and_anonymous_callers_must_authenticate()
    {
        var worker = await _server.Get<Kiln.Security.ApiKeyStore>().CreateAsync("w", Kiln.Security.Roles.Worker, CancellationToken.None);
        using var asWorker = await new TusTestClient(_server.CreateClient(worker.Secret)).SendCreateAsync(10);
        Assert.Equal(HttpStatusCode.Forbidden, asWorker.StatusCode);

        using var anonymous = await new TusTestClient(_server.CreateClient()).SendCreateAsync(10);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task A_post_with_x_http_method_override_patch_appends()
    {
        var (client, _) = await _server.CreateClientKeyAsync();
        var tus = new TusTestClient(client);
        var location = await tus.CreateAsync(5, TusTestClient.Metadata(("settings", NoDerivatives)));
        using var request = new HttpRequestMessage(HttpMethod.Post, location) { Content = new ByteArrayContent([1, 2, 3]) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(TusTestClient.ContentType);
        request.Headers.Add("X-HTTP-Method-Override", "PATCH");
        request.Headers.Add("Tus-Resumable", "1.0.0");
        request.Headers.Add("Upload-Offset", "0");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(3, await tus.OffsetAsync(location));
    }

    [Fact]
    public async Task Tus_headers_are_exposed_to_cross_origin_pages()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Security:CorsOrigins:0"] = "https://app.example" });
        using var simple = new HttpRequestMessage(HttpMethod.Head, $"/api/tus/{Guid.NewGuid()}");
        simple.Headers.Add("Origin", "https://app.example");
        simple.Headers.Add("Tus-Resumable", "1.0.0");
        using var response = await server.Admin.SendAsync(simple);

        var exposed = response.Headers.GetValues("Access-Control-Expose-Headers").SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)).ToList();
        foreach (var header in new[] { "Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Tus-Resumable", "Kiln-Asset-Id" })
        {
            Assert.Contains(header, exposed, StringComparer.OrdinalIgnoreCase);
        }
    }

    internal static async Task<string> ErrorCodeAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>();

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private string OriginalPath(Guid assetId) => Path.Combine(_server.DataDirectory, "originals", assetId.ToString("N"), "original");

    private string PartialPath(string location) =>
        Path.Combine(_server.DataDirectory, "tmp", "tus", Guid.Parse(location.Split('/').Last()).ToString("N") + ".part");
}
