using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Microsoft.AspNetCore.Routing;

namespace Kiln.Tests.Api;

public sealed class ApiConventionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly Infrastructure.KilnServer _server = fixture.Server;

    [Fact]
    public async Task The_openapi_document_lists_every_api_endpoint_with_its_methods()
    {
        using var anonymous = _server.CreateClient();
        var document = (await anonymous.GetFromJsonAsync<JsonObject>("/openapi/v1.json"))!;
        Assert.StartsWith("3.", document["openapi"]!.GetValue<string>(), StringComparison.Ordinal);
        var paths = document["paths"]!.AsObject();

        var mapped = _server.Get<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/api", StringComparison.Ordinal) && e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.IExcludeFromDescriptionMetadata>()?.ExcludeFromDescription != true)
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => (Path: OpenApiPath(e.RoutePattern.RawText!), Method: m.ToLowerInvariant())))
            .Distinct()
            .ToList();
        Assert.True(mapped.Count >= 20, $"found only {mapped.Count} API endpoints");
        foreach (var (path, method) in mapped)
        {
            Assert.True(paths[path]?[method] is not null, $"{method.ToUpperInvariant()} {path} is missing from the OpenAPI document");
        }

        foreach (var expected in new[] { "/api/uploads", "/api/jobs", "/api/jobs/{id}/cancel", "/api/assets/{id}", "/api/files/{id}/download", "/api/files/{id}/signed-url", "/api/batches", "/api/queues/{name}" })
        {
            Assert.True(paths.ContainsKey(expected), expected + " is documented");
        }

        Assert.NotNull(paths["/api/queues/{name}"]!["patch"]!["requestBody"]);
        Assert.NotNull(paths["/api/batches"]!["post"]!["requestBody"]);

        // The API key is declared as a bearer scheme and required where the endpoint needs it.
        var scheme = document["components"]!["securitySchemes"]!["bearer"]!;
        Assert.Equal(("http", "bearer"), (scheme["type"]!.GetValue<string>(), scheme["scheme"]!.GetValue<string>()));
        Assert.NotNull(paths["/api/jobs"]!["get"]!["security"]![0]!["bearer"]);
    }

    [Theory]
    [InlineData("GET", "/api/no-such-thing", HttpStatusCode.NotFound, "not_found")]
    [InlineData("DELETE", "/api/jobs", HttpStatusCode.MethodNotAllowed, "method_not_allowed")]
    [InlineData("GET", "/api/jobs/not-a-guid", HttpStatusCode.NotFound, "not_found")]
    [InlineData("GET", "/api/jobs?pageSize=abc", HttpStatusCode.BadRequest, "bad_request")]
    public async Task Framework_errors_are_problem_details_with_an_error_code(string method, string url, HttpStatusCode status, string code)
    {
        using var response = await _server.Admin.SendAsync(new HttpRequestMessage(new HttpMethod(method), url));
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal(code, problem["errorCode"]!.GetValue<string>());
        Assert.Equal((int)status, problem["status"]!.GetValue<int>());
        Assert.Equal("urn:kiln:error:" + code, problem["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_request_without_a_key_answers_401_with_a_bearer_challenge()
    {
        using var anonymous = _server.CreateClient();
        using var response = await anonymous.GetAsync("/api/jobs");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
        Assert.Equal("auth.required", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task An_unknown_key_answers_401_saying_so()
    {
        using var stranger = _server.CreateClient("kiln_not-a-real-key");
        using var response = await stranger.GetAsync("/api/assets");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("auth.invalid_key", await JobEndpointTests.ErrorCodeAsync(response));
    }

    /// <summary>Route patterns as OpenAPI writes them: constraints and catch-all stars dropped.</summary>
    private static string OpenApiPath(string pattern) =>
        System.Text.RegularExpressions.Regex.Replace(pattern.TrimEnd('/'), @"\{\**([^:}]+)(:[^}]*)?\}", "{$1}");
}
