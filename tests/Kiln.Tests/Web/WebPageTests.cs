using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Web;

/// <summary>The dashboard's static files as Kiln serves them, from a stand-in build (index.html and a hashed asset).</summary>
public sealed class WebPageTests : IAsyncLifetime
{
    private const string IndexHtml = "<!doctype html><html><head><script type=\"module\" src=\"/assets/index-3f9a1c.js\"></script></head><body><div id=\"root\"></div></body></html>";
    private readonly string _root = Directory.CreateTempSubdirectory("kiln-test-web-").FullName;
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_root, "assets"));
        await File.WriteAllTextAsync(Path.Combine(_root, "index.html"), IndexHtml);
        await File.WriteAllTextAsync(Path.Combine(_root, "assets", "index-3f9a1c.js"), "console.log('kiln')");
        _server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Web:Root"] = _root });
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/jobs/123")]
    [InlineData("/assets-of-mine")]
    public async Task The_root_and_client_routes_serve_index_html_uncached_with_the_page_policy(string path)
    {
        using var anonymous = _server.CreateClient();
        using var response = await anonymous.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(IndexHtml, await response.Content.ReadAsStringAsync());
        Assert.True(response.Headers.CacheControl!.NoCache);
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        foreach (var directive in new[]
                 {
                     "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
                     "media-src 'self' blob:", "worker-src 'self' blob:", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'",
                     $"connect-src 'self' ws://{_server.BaseAddress.Authority} wss://{_server.BaseAddress.Authority}",
                 })
        {
            Assert.Contains(directive, csp.Split(';', StringSplitOptions.TrimEntries));
        }
    }

    [Fact]
    public async Task Hashed_assets_are_cached_for_a_year_as_immutable()
    {
        using var anonymous = _server.CreateClient();
        using var response = await anonymous.GetAsync("/assets/index-3f9a1c.js");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("public, max-age=31536000, immutable", response.Headers.CacheControl!.ToString());
        Assert.Equal("console.log('kiln')", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("/assets/missing-123.js")]
    [InlineData("/favicon.ico")]
    public async Task A_missing_file_is_a_404_not_the_page(string path)
    {
        using var anonymous = _server.CreateClient();
        using var response = await anonymous.GetAsync(path);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain("id=\"root\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/api/unknown")]
    [InlineData("/hubs/unknown")]
    [InlineData("/health/unknown")]
    public async Task Server_paths_never_fall_back_to_the_page_and_keep_their_headers(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd("text/html,application/xhtml+xml,*/*;q=0.8"); // what a browser's address bar sends
        using var response = await _server.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("not_found", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
        Assert.DoesNotContain("worker-src", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Api_responses_keep_their_own_headers()
    {
        using var response = await _server.Admin.GetAsync("/api/assets");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False(response.Headers.CacheControl?.Public ?? false);
        Assert.DoesNotContain("base-uri", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }
}

/// <summary>A server whose page was never built, or is switched off.</summary>
public sealed class WebPageMissingTests
{
    [Fact]
    public async Task Without_a_build_the_root_explains_how_to_build_and_serves_the_page_once_it_appears()
    {
        var root = Path.Combine(Path.GetTempPath(), "kiln-test-web-missing-" + Guid.NewGuid().ToString("N"));
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Web:Root"] = root });
        using var anonymous = server.CreateClient();
        try
        {
            using (var browser = new HttpRequestMessage(HttpMethod.Get, "/jobs/1"))
            {
                browser.Headers.Accept.ParseAdd("text/html,application/xhtml+xml");
                using var html = await anonymous.SendAsync(browser);
                Assert.Equal(HttpStatusCode.NotFound, html.StatusCode);
                Assert.Equal("text/html", html.Content.Headers.ContentType!.MediaType);
                Assert.Contains("not built", await html.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            using (var problem = await anonymous.GetAsync("/"))
            {
                Assert.Equal(HttpStatusCode.NotFound, problem.StatusCode);
                Assert.Equal("web.not_built", (await problem.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
            }

            Directory.CreateDirectory(root);
            await File.WriteAllTextAsync(Path.Combine(root, "index.html"), "<!doctype html><title>built later</title>");
            using var built = await anonymous.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, built.StatusCode);
            Assert.Contains("built later", await built.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }

    [Fact]
    public async Task With_the_page_switched_off_the_root_is_a_plain_404_problem()
    {
        var root = Directory.CreateTempSubdirectory("kiln-test-web-off-").FullName;
        await File.WriteAllTextAsync(Path.Combine(root, "index.html"), "<!doctype html>");
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Web:Root"] = root, ["Kiln:Web:Enabled"] = "false" });
        using var response = await server.CreateClient().GetAsync("/");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("not_found", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
        Directory.Delete(root, recursive: true);
    }
}
