using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Enhance;
using Kiln.Processing;
using Kiln.Providers;
using Kiln.Tests.Infrastructure;
using Kiln.Tests.Transcription;

namespace Kiln.Tests.Enhance;

/// <summary>image.enhance with Gemini (through the API) and OpenAI image edits, against a local fake of their wire formats.</summary>
public sealed class RemoteEnhanceTests : IAsyncLifetime
{
    private FakeAiServer _fake = null!;

    public async ValueTask InitializeAsync() => _fake = await FakeAiServer.StartAsync();

    public async ValueTask DisposeAsync() => await _fake.DisposeAsync();

    /// <summary>A real PNG from the corpus stands in for the model's picture.</summary>
    private static byte[] ModelPng => File.ReadAllBytes(Directory.GetFiles(TestPaths.Corpus, "*.png").OrderBy(f => new FileInfo(f).Length).First());

    [Fact]
    public async Task Gemini_gets_the_image_inline_with_the_categorys_prompt_and_its_image_becomes_the_enhanced_derivative()
    {
        var png = ModelPng;
        _fake.Enqueue(new ScriptedReply(429, """{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}""", new() { ["Retry-After"] = "0" }));
        _fake.Default = _ => new ScriptedReply(200, $$$"""
            {"candidates":[{"content":{"parts":[{"text":"Here is the enhanced photo."},{"inlineData":{"mimeType":"image/png","data":"{{{Convert.ToBase64String(png)}}}"}}],"role":"model"},"finishReason":"STOP","index":0}],
             "usageMetadata":{"promptTokenCount":1290,"candidatesTokenCount":1290,"totalTokenCount":2580},"modelVersion":"gemini-2.5-flash-image"}
            """);
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Enhance:Provider"] = "gemini",
            ["Kiln:Enhance:Gemini:BaseUrl"] = _fake.BaseUrl + "/v1beta",
            ["Kiln:Enhance:Gemini:ApiKey"] = "gemini-secret",
            ["Kiln:Enhance:Gemini:BackoffSeconds"] = "0",
            ["Kiln:Enhance:Gemini:Prompts:DISP"] = "Make this display portrait bright.",
        });
        var jpeg = await File.ReadAllBytesAsync(TestPaths.CorpusFile("Portrait_1.jpg"));
        var body = await server.UploadAsync([("portrait.jpg", jpeg)], category: "DISP");
        var asset = body["assets"]![0]!;
        var job = asset["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "image.enhance")!;
        var done = await server.WaitForJobAsync(job["id"]!.GetValue<Guid>(), ["completed", "failed"], TimeSpan.FromMinutes(3));
        Assert.True(done["state"]!.GetValue<string>() == "completed", done.ToJsonString());
        Assert.Equal(("gemini", "gemini-2.5-flash-image", png.LongLength), (
            done["result"]!["provider"]!.GetValue<string>(), done["result"]!["model"]!.GetValue<string>(), done["result"]!["bytes"]!.GetValue<long>()));

        var requests = _fake.Received.ToArray();
        Assert.Equal(2, requests.Length);
        var r = requests[1];
        Assert.Equal("/v1beta/models/gemini-2.5-flash-image:generateContent", r.Path);
        Assert.Equal("gemini-secret", r.Fields["header:x-goog-api-key"]);
        Assert.Null(r.Authorization);
        var parts = JsonNode.Parse(r.Body)!["contents"]![0]!["parts"]!.AsArray();
        Assert.Equal("Make this display portrait bright.", parts[0]!["text"]!.GetValue<string>());
        Assert.Equal("image/jpeg", parts[1]!["inline_data"]!["mime_type"]!.GetValue<string>());
        Assert.Equal(Convert.ToBase64String(jpeg), parts[1]!["inline_data"]!["data"]!.GetValue<string>());

        var details = (await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}"))!;
        var enhanced = details["derivatives"]!.AsArray().Single(d => d!["type"]!.GetValue<string>() == "ENHANCED")!;
        Assert.Equal("image/png", enhanced["contentType"]!.GetValue<string>());
        Assert.Equal(png, await server.Admin.GetByteArrayAsync($"/api/files/{enhanced["id"]}/download"));
        using var ready = await server.CreateClient().GetAsync("/health/ready");
        var health = await ready.Content.ReadAsStringAsync();
        Assert.Contains("gemini-2.5-flash-image", health, StringComparison.Ordinal);
        Assert.DoesNotContain("gemini-secret", health, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Gemini_refusals_and_openai_edits_errors_are_clear_and_openai_gets_a_multipart_edit()
    {
        var png = ModelPng;
        var options = new RemoteEnhanceOptions { BaseUrl = _fake.BaseUrl + "/v1", ApiKey = "sk-img", Model = "gpt-image-1", BackoffSeconds = 0, MaxAttempts = 2 };
        var openai = new OpenAiImageEnhancer(new HttpClient(), options, new ProviderGate(TimeProvider.System), TimeProvider.System);
        var jpeg = await File.ReadAllBytesAsync(TestPaths.CorpusFile("Portrait_1.jpg"));
        _fake.Enqueue(
            new ScriptedReply(500, """{"error":{"message":"The server had an error processing your request.","type":"server_error"}}"""),
            new ScriptedReply(200, $$$"""{"created":1713833628,"data":[{"b64_json":"{{{Convert.ToBase64String(png)}}}"}],"usage":{"total_tokens":100,"input_tokens":50,"output_tokens":50}}"""));
        var result = await openai.EnhanceAsync(jpeg, "image/jpeg", "DECD", TestContext.Current.CancellationToken);
        Assert.Equal(png, result.Bytes);
        Assert.Equal(("image/png", "gpt-image-1"), (result.ContentType, result.Model));
        var r = _fake.Received.Last();
        Assert.Equal("/v1/images/edits", r.Path);
        Assert.Equal("Bearer sk-img", r.Authorization);
        Assert.Equal(("gpt-image-1", "1", "image/jpeg"), (r.Fields["model"], r.Fields["n"], r.Fields["@image"]));
        Assert.Equal(jpeg.LongLength, r.FileBytes);
        Assert.StartsWith("Enhance this portrait photo", r.Fields["prompt"], StringComparison.Ordinal);

        _fake.Enqueue(new ScriptedReply(400, """{"error":{"message":"Your request was rejected as a result of our safety system.","type":"image_generation_user_error","code":"moderation_blocked"}}"""));
        var rejected = await Assert.ThrowsAsync<JobFailedException>(() => openai.EnhanceAsync(jpeg, "image/jpeg", null, TestContext.Current.CancellationToken));
        Assert.Equal(("provider.rejected", false), (rejected.ErrorCode, rejected.Retryable));
        Assert.Contains("safety system", rejected.Message, StringComparison.Ordinal);

        _fake.Enqueue(new ScriptedReply(200, """{"created":1,"data":[{"b64_json":"not base64!"}]}"""));
        var bad = await Assert.ThrowsAsync<JobFailedException>(() => openai.EnhanceAsync(jpeg, "image/jpeg", null, TestContext.Current.CancellationToken));
        Assert.Equal("provider.bad_response", bad.ErrorCode);

        var refusal = Assert.Throws<JobFailedException>(() => GeminiEnhancer.Parse(
            """{"candidates":[{"content":{"parts":[{"text":"I can't edit images of real people in that way."}],"role":"model"},"finishReason":"STOP"}]}""", "m"));
        Assert.Equal("provider.rejected", refusal.ErrorCode);
        Assert.Contains("real people", refusal.Message, StringComparison.Ordinal);
        Assert.Equal("provider.bad_response", Assert.Throws<JobFailedException>(() => GeminiEnhancer.Parse("{\"candidates\":[", "m")).ErrorCode);
    }
}
