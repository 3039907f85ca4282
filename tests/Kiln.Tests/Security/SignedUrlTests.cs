using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Tests.Api;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Security;

public sealed class SignedUrlTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly KilnServer _server = fixture.Server;

    [Fact]
    public async Task A_signed_url_downloads_the_file_without_a_key_and_with_ranges()
    {
        var (_, file) = await DerivativeAsync();
        var signed = await SignAsync(_server.Admin, file);
        Assert.StartsWith($"/api/files/{file}/download?expires=", signed["url"]!.GetValue<string>(), StringComparison.Ordinal);
        var expiresAt = signed["expiresAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(expiresAt - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(880), TimeSpan.FromSeconds(901));

        using var browser = _server.CreateClient();
        Assert.Equal(TestJobs.OutputBytes(100_000), await browser.GetByteArrayAsync(signed["url"]!.GetValue<string>()));

        using var range = new HttpRequestMessage(HttpMethod.Get, signed["url"]!.GetValue<string>());
        range.Headers.TryAddWithoutValidation("Range", "bytes=0-9");
        using var partial = await browser.SendAsync(range);
        Assert.Equal(HttpStatusCode.PartialContent, partial.StatusCode);

        var content = $"/api/files/{file}/content/parts/part1.txt?{signed["query"]!.GetValue<string>()}";
        Assert.Equal("part one", await browser.GetStringAsync(content));
    }

    [Fact]
    public async Task A_client_signs_its_own_files_only_and_chooses_a_lifetime_within_the_cap()
    {
        var (client, _) = await _server.CreateClientKeyAsync("signer");
        var (asset, _) = await TestJobs.UploadAsync(_server, client, [], "mine.bin");
        var signed = await SignAsync(client, asset, "?seconds=60");
        Assert.InRange(signed["expiresAt"]!.GetValue<DateTimeOffset>() - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(50), TimeSpan.FromSeconds(61));
        using var browser = _server.CreateClient();
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 }, await browser.GetByteArrayAsync(signed["url"]!.GetValue<string>()));

        var (_, others) = await DerivativeAsync();
        using var foreign = await client.PostAsync($"/api/files/{others}/signed-url", null);
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);

        foreach (var seconds in new[] { 0, 86_401 })
        {
            using var bad = await client.PostAsync($"/api/files/{asset}/signed-url?seconds={seconds}", null);
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Equal("files.bad_lifetime", await JobEndpointTests.ErrorCodeAsync(bad));
        }
    }

    [Fact]
    public async Task A_tampered_signature_expiry_or_file_id_answers_401()
    {
        var (asset, file) = await DerivativeAsync();
        var signed = await SignAsync(_server.Admin, file);
        var query = System.Web.HttpUtility.ParseQueryString(signed["query"]!.GetValue<string>());
        var expires = long.Parse(query["expires"]!, CultureInfo.InvariantCulture);
        var sig = query["sig"]!;
        var flipped = (sig[0] == 'A' ? 'B' : 'A') + sig[1..];

        using var browser = _server.CreateClient();
        foreach (var url in new[]
        {
            $"/api/files/{file}/download?expires={expires}&sig={flipped}",
            $"/api/files/{file}/download?expires={expires + 3600}&sig={sig}",
            $"/api/files/{asset}/download?expires={expires}&sig={sig}",
            $"/api/files/{file}/download?expires=soon&sig={sig}",
            $"/api/files/{file}/download?sig={sig}",
        })
        {
            using var response = await browser.GetAsync(url);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("auth.bad_signature", await JobEndpointTests.ErrorCodeAsync(response));
        }
    }

    [Fact]
    public async Task An_expired_url_answers_401_saying_it_expired()
    {
        var (_, file) = await DerivativeAsync();

        // Signed with the server's own key for a moment already past: valid signature, old expiry.
        var key = await File.ReadAllBytesAsync(Path.Combine(_server.DataDirectory, "keys", "url-signing.key"));
        var expires = DateTimeOffset.UtcNow.AddSeconds(-5).ToUnixTimeSeconds();
        var sig = Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes($"kiln-file-v1|{file:N}|{expires}")))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');

        using var browser = _server.CreateClient();
        using var response = await browser.GetAsync($"/api/files/{file}/download?expires={expires}&sig={sig}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("auth.url_expired", await JobEndpointTests.ErrorCodeAsync(response));

        using var fresh = await browser.GetAsync($"/api/files/{file}/download?expires={expires + 3600}&sig={sig}");
        Assert.Equal("auth.bad_signature", await JobEndpointTests.ErrorCodeAsync(fresh));
    }

    [Fact]
    public async Task A_url_signed_for_one_second_stops_working_after_it()
    {
        var (_, file) = await DerivativeAsync();
        var signed = await SignAsync(_server.Admin, file, "?seconds=1");
        using var browser = _server.CreateClient();
        // Only "it stops working" is under test; how soon after the second depends on the machine's load.
        var status = await Poll.UntilAsync(
            async () =>
            {
                using var response = await browser.GetAsync(signed["url"]!.GetValue<string>());
                return response.StatusCode;
            },
            s => s != HttpStatusCode.OK,
            "the signed URL to expire");

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task A_signature_opens_nothing_but_the_files_bytes()
    {
        var (asset, file) = await DerivativeAsync();
        var query = (await SignAsync(_server.Admin, file))["query"]!.GetValue<string>();
        using var browser = _server.CreateClient();
        foreach (var url in new[] { $"/api/files/{file}", $"/api/assets/{asset}", "/api/jobs", "/api/assets", $"/api/files/{file}/signed-url" })
        {
            using var response = url.EndsWith("signed-url", StringComparison.Ordinal)
                ? await browser.PostAsync($"{url}?{query}", null)
                : await browser.GetAsync($"{url}?{query}");
            Assert.True(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, $"{url}: {response.StatusCode}");
        }
    }

    private async Task<(Guid Asset, Guid File)> DerivativeAsync()
    {
        var (asset, jobs) = await TestJobs.UploadAsync(_server, _server.Admin, [TestJobs.Output]);
        await _server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
        var details = await _server.Admin.GetJsonAsync($"/api/assets/{asset}");
        return (asset, details["derivatives"]![0]!["id"]!.GetValue<Guid>());
    }

    private static async Task<JsonObject> SignAsync(HttpClient client, Guid file, string query = "")
    {
        using var response = await client.PostAsync($"/api/files/{file}/signed-url{query}", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }
}
