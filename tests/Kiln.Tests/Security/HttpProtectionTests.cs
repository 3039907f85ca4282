using System.Net;
using System.Net.Http.Json;
using System.Text;
using Kiln.Tests.Api;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Security;

public sealed class RateLimitTests
{
    [Fact]
    public async Task A_key_over_its_rate_gets_429_with_retry_after_while_another_key_is_served()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Security:PerKeyRequestsPerSecond"] = "5",
            ["Kiln:Security:PerKeyBurst"] = "5",
        });
        var (busy, _) = await server.CreateClientKeyAsync("busy");
        var (calm, _) = await server.CreateClientKeyAsync("calm");

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 30 && limited is null; i++)
        {
            var response = await busy.GetAsync("/api/assets");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
            else
            {
                response.Dispose();
            }
        }

        Assert.NotNull(limited);
        Assert.True(statuses.Take(5).All(s => s == HttpStatusCode.OK), string.Join(",", statuses));
        var retryAfter = limited.Headers.RetryAfter!.Delta!.Value;
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        Assert.Equal("rate_limited", await JobEndpointTests.ErrorCodeAsync(limited));
        Assert.Equal("application/problem+json", limited.Content.Headers.ContentType!.MediaType);
        limited.Dispose();

        Assert.Equal(HttpStatusCode.OK, (await calm.GetAsync("/api/assets")).StatusCode);
        // Waiting out Retry-After is the behaviour under test (a client that honours it gets through), not a wait for an
        // event: the limiter's window is real time inside the server.
        await Task.Delay(retryAfter + TimeSpan.FromMilliseconds(200));
        Assert.Equal(HttpStatusCode.OK, (await busy.GetAsync("/api/assets")).StatusCode);
    }

    [Fact]
    public async Task The_global_limit_holds_across_keys()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Security:GlobalRequestsPerSecond"] = "6" });
        var clients = new List<HttpClient>();
        for (var i = 0; i < 3; i++)
        {
            clients.Add((await server.CreateClientKeyAsync($"k{i}")).Client);
        }

        var statuses = new List<HttpStatusCode>();
        for (var round = 0; round < 5; round++)
        {
            foreach (var client in clients)
            {
                statuses.Add((await client.GetAsync("/api/assets")).StatusCode);
            }
        }

        // Six tokens shared by all keys: each key alone is far under any per-key limit.
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.True(statuses.Take(6).All(s => s == HttpStatusCode.OK), string.Join(",", statuses));
    }
}

public sealed class CorsAndHeaderTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync(new Dictionary<string, string?>
    {
        ["Kiln:Security:CorsOrigins:0"] = "https://app.example",
        ["Kiln:Security:CorsOrigins:1"] = "http://localhost:5173",
    });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_preflight_from_an_allowed_origin_is_answered_with_its_origin_and_the_asked_header()
    {
        using var anonymous = _server.CreateClient();
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/jobs");
        preflight.Headers.Add("Origin", "https://app.example");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization, content-type");
        using var response = await anonymous.SendAsync(preflight);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("https://app.example", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("authorization", response.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("POST", response.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Another_origin_gets_no_cors_headers()
    {
        using var anonymous = _server.CreateClient();
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/jobs");
        preflight.Headers.Add("Origin", "https://evil.example");
        preflight.Headers.Add("Access-Control-Request-Method", "DELETE");
        using var response = await anonymous.SendAsync(preflight);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));

        using var get = new HttpRequestMessage(HttpMethod.Get, "/api/assets");
        get.Headers.Add("Origin", "https://evil.example");
        using var actual = await _server.Admin.SendAsync(get);
        Assert.False(actual.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task A_request_from_an_allowed_origin_may_read_the_download_headers()
    {
        using var get = new HttpRequestMessage(HttpMethod.Get, "/api/assets");
        get.Headers.Add("Origin", "http://localhost:5173");
        using var response = await _server.Admin.SendAsync(get);
        Assert.Equal("http://localhost:5173", response.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var exposed = response.Headers.GetValues("Access-Control-Expose-Headers").Single();
        foreach (var header in new[] { "Content-Range", "Accept-Ranges", "ETag", "Content-Disposition" })
        {
            Assert.Contains(header, exposed, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Theory]
    [InlineData("/api/assets", true)]
    [InlineData("/api/assets", false)]
    [InlineData("/health/live", false)]
    [InlineData("/api/nothing-here", true)]
    public async Task Every_response_carries_the_security_headers(string url, bool authenticated)
    {
        using var client = authenticated ? null : _server.CreateClient();
        using var response = await (client ?? _server.Admin).GetAsync(url);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Server"));
    }
}

public sealed class RequestSizeTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync(new Dictionary<string, string?>
    {
        ["Kiln:Security:MaxRequestBodyBytes"] = "1000",
    });

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_json_body_over_the_limit_answers_413_as_a_problem()
    {
        var json = JsonContent.Create(new { assetIds = Enumerable.Range(0, 100).Select(_ => Guid.NewGuid()).ToArray() });
        await json.LoadIntoBufferAsync();
        using var response = await _server.Admin.PostAsync("/api/batches", json);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var code = await JobEndpointTests.ErrorCodeAsync(response);
        Assert.Equal("too_large", code);
    }

    [Fact]
    public async Task A_chunked_json_body_over_the_limit_answers_413_too()
    {
        var body = "{\"assetIds\":[" + string.Join(',', Enumerable.Range(0, 100).Select(_ => $"\"{Guid.NewGuid()}\"")) + "]}";
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(body)));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/batches") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await _server.Admin.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("too_large", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task Uploads_have_their_own_larger_limit()
    {
        var body = await _server.UploadAsync([("bigger-than-json.bin", new byte[50_000])], new System.Text.Json.Nodes.JsonObject { ["jobs"] = new System.Text.Json.Nodes.JsonArray() });
        Assert.Equal(50_000, body["assets"]![0]!["size"]!.GetValue<long>());
    }
}
