using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Microsoft.AspNetCore.WebUtilities;

namespace Kiln.Tests.Api;

public sealed class FileEndpointTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int Length = 100_000;
    private readonly Infrastructure.KilnServer _server = fixture.Server;

    [Fact]
    public async Task A_derivative_has_metadata_with_its_type_size_and_download_url()
    {
        var (asset, file) = await DerivativeAsync();
        var info = await _server.Admin.GetJsonAsync($"/api/files/{file}");

        Assert.Equal(asset, info["assetId"]!.GetValue<Guid>());
        Assert.Equal("TEST", info["type"]!.GetValue<string>());
        Assert.Equal(Length, info["size"]!.GetValue<long>());
        Assert.Equal("application/octet-stream", info["contentType"]!.GetValue<string>());
        Assert.Equal($"/api/files/{file}/download", info["downloadUrl"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_original_is_a_file_addressed_by_its_asset_id()
    {
        var bytes = Encoding.UTF8.GetBytes("an original of some length");
        var (asset, _) = await TestJobs.UploadAsync(_server, _server.Admin, [], "notes.txt", bytes);
        var info = await _server.Admin.GetJsonAsync($"/api/files/{asset}");
        Assert.Equal("ORIGINAL", info["type"]!.GetValue<string>());
        Assert.Equal("notes.txt", info["fileName"]!.GetValue<string>());

        using var response = await _server.Admin.GetAsync($"/api/files/{asset}/download");
        Assert.Equal(bytes, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition!.DispositionType);
        Assert.Equal("notes.txt", response.Content.Headers.ContentDisposition.FileNameStar);
    }

    [Fact]
    public async Task A_download_sends_the_whole_file_with_an_etag_and_accepts_ranges()
    {
        var (_, file) = await DerivativeAsync();
        using var response = await _server.Admin.GetAsync($"/api/files/{file}/download");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(TestJobs.OutputBytes(Length), await response.Content.ReadAsByteArrayAsync());
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal("attachment", response.Content.Headers.ContentDisposition!.DispositionType);
        Assert.EndsWith("-test.bin", response.Content.Headers.ContentDisposition.FileNameStar, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inline_disposition_is_available_for_display_in_a_browser()
    {
        var (_, file) = await DerivativeAsync();
        using var response = await _server.Admin.GetAsync($"/api/files/{file}/download?disposition=inline");
        Assert.Equal("inline", response.Content.Headers.ContentDisposition!.DispositionType);

        using var bad = await _server.Admin.GetAsync($"/api/files/{file}/download?disposition=evil");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("files.bad_disposition", await JobEndpointTests.ErrorCodeAsync(bad));
    }

    [Theory]
    [InlineData("items=0-9")]
    [InlineData("lines=0-9, 20-29")]
    public async Task An_unknown_range_unit_is_ignored_and_the_whole_file_sent(string range)
    {
        var (_, file) = await DerivativeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        request.Headers.TryAddWithoutValidation("Range", range);
        using var response = await _server.Admin.SendAsync(request, TestContext.Current.CancellationToken);

        // RFC 9110 §14.2: a server ignores a Range header with a unit it does not understand.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Null(response.Content.Headers.ContentRange);
        Assert.Equal(TestJobs.OutputBytes(Length), await response.Content.ReadAsByteArrayAsync(TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("bytes=10-19", 10, 19)]
    [InlineData("bytes=99990-", 99_990, 99_999)]
    [InlineData("bytes=-5", 99_995, 99_999)]
    [InlineData("bytes=99995-200000", 99_995, 99_999)]
    public async Task A_single_range_answers_206_with_exactly_those_bytes(string range, int from, int to)
    {
        var (_, file) = await DerivativeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        request.Headers.TryAddWithoutValidation("Range", range);
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(new ContentRangeHeaderValue(from, to, Length), response.Content.Headers.ContentRange);
        Assert.Equal(TestJobs.OutputBytes(Length)[from..(to + 1)], await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Several_ranges_answer_206_as_multipart_byteranges()
    {
        var (_, file) = await DerivativeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        request.Headers.TryAddWithoutValidation("Range", "bytes=500-599, 0-9, -4");
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal("multipart/byteranges", response.Content.Headers.ContentType!.MediaType);
        var boundary = response.Content.Headers.ContentType.Parameters.Single(p => p.Name == "boundary").Value!;
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);

        var reader = new MultipartReader(boundary, new MemoryStream(body));
        var expected = TestJobs.OutputBytes(Length);
        var parts = new List<(string Range, byte[] Bytes)>();
        while (await reader.ReadNextSectionAsync() is { } section)
        {
            using var copy = new MemoryStream();
            await section.Body.CopyToAsync(copy);
            Assert.Equal("application/octet-stream", section.ContentType);
            parts.Add((section.Headers!["Content-Range"].ToString(), copy.ToArray()));
        }

        // Ranges come back in file order.
        Assert.Equal(["bytes 0-9/100000", "bytes 500-599/100000", "bytes 99996-99999/100000"], parts.Select(p => p.Range));
        Assert.Equal(expected[..10], parts[0].Bytes);
        Assert.Equal(expected[500..600], parts[1].Bytes);
        Assert.Equal(expected[99_996..], parts[2].Bytes);
    }

    [Fact]
    public async Task Overlapping_ranges_are_merged_into_one()
    {
        var (_, file) = await DerivativeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        request.Headers.TryAddWithoutValidation("Range", "bytes=0-99,50-149,150-199");
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        Assert.Equal(new ContentRangeHeaderValue(0, 199, Length), response.Content.Headers.ContentRange);
        Assert.Equal(TestJobs.OutputBytes(Length)[..200], await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("bytes=100000-")]
    [InlineData("bytes=200000-200010")]
    [InlineData("bytes=200000-200010,300000-")]
    public async Task A_range_beyond_the_end_answers_416_with_the_length(string range)
    {
        var (_, file) = await DerivativeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        request.Headers.TryAddWithoutValidation("Range", range);
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, response.StatusCode);
        Assert.Equal("bytes */100000", response.Content.Headers.GetValues("Content-Range").Single());
        Assert.Equal("range_not_satisfiable", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task A_matching_if_none_match_answers_304_and_a_stale_one_gets_the_file()
    {
        var (_, file) = await DerivativeAsync();
        using var first = await _server.Admin.GetAsync($"/api/files/{file}/download");
        var etag = first.Headers.ETag!;

        using var again = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        again.Headers.IfNoneMatch.Add(etag);
        again.Headers.TryAddWithoutValidation("Range", "bytes=0-1,5-6");
        using var notModified = await _server.Admin.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());

        using var stale = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        stale.Headers.IfNoneMatch.Add(new EntityTagHeaderValue("\"something-else\""));
        using var full = await _server.Admin.SendAsync(stale);
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        Assert.Equal(Length, (await full.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task An_if_range_with_a_stale_etag_gets_the_whole_file()
    {
        var (_, file) = await DerivativeAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/files/{file}/download");
        request.Headers.TryAddWithoutValidation("Range", "bytes=0-9,20-29");
        request.Headers.IfRange = new RangeConditionHeaderValue("\"old\"");
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Length, (await response.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task Head_answers_the_headers_without_a_body()
    {
        var (_, file) = await DerivativeAsync();
        using var response = await _server.Admin.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/api/files/{file}/download"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Length, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Files_beside_a_derivative_are_served_but_nothing_outside_its_directory()
    {
        var (asset, file) = await DerivativeAsync();
        Assert.Equal("part one", await _server.Admin.GetStringAsync($"/api/files/{file}/content/parts/part1.txt"));

        foreach (var escape in new[] { "../../../originals/" + asset.ToString("N") + "/original", "..%2F..%2Fx", "%2e%2e/%2e%2e/%2e%2e/keys/url-signing.key" })
        {
            using var response = await _server.Admin.GetAsync($"/api/files/{file}/content/{escape}");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        }

        using var originalHasNoContent = await _server.Admin.GetAsync($"/api/files/{asset}/content/x");
        Assert.Equal(HttpStatusCode.NotFound, originalHasNoContent.StatusCode);
    }

    [Fact]
    public async Task An_unknown_file_answers_404_for_metadata_and_download()
    {
        foreach (var url in new[] { $"/api/files/{Guid.NewGuid()}", $"/api/files/{Guid.NewGuid()}/download" })
        {
            using var response = await _server.Admin.GetAsync(url);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", await JobEndpointTests.ErrorCodeAsync(response));
        }
    }

    private async Task<(Guid Asset, Guid File)> DerivativeAsync()
    {
        var (asset, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Output]);
        await _server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
        var details = await _server.Admin.GetJsonAsync($"/api/assets/{asset}");
        var derivative = Assert.Single(details["derivatives"]!.AsArray());
        return (asset, derivative!["id"]!.GetValue<Guid>());
    }
}
