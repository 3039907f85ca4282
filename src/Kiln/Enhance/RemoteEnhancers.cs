using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Media.Detection;
using Kiln.Processing;
using Kiln.Providers;
using Kiln.Storage;

namespace Kiln.Enhance;

/// <summary>An image a remote model returned, and which model made it.</summary>
internal sealed record EnhancedImage(byte[] Bytes, string ContentType, string Extension, string Model);

/// <summary>An external image model behind <c>image.enhance</c>.</summary>
internal interface IRemoteEnhancer
{
    string Name { get; }

    Task<EnhancedImage> EnhanceAsync(byte[] image, string contentType, string? category, CancellationToken cancellationToken);
}

/// <summary>Shared by both remote enhancers: retry rules from options and checking that an image came back.</summary>
internal static class RemoteEnhance
{
    public static ProviderRetry Retry(RemoteEnhanceOptions o) => new(
        TimeSpan.FromSeconds(o.TimeoutSeconds), o.MaxAttempts, TimeSpan.FromSeconds(o.MaxRetryAfterSeconds), TimeSpan.FromSeconds(o.BackoffSeconds));

    /// <summary>Decodes base64 image data and checks from its bytes that it is an image we can store.</summary>
    public static EnhancedImage Decode(string? base64, string model, string provider)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64 ?? throw new FormatException("no image data"));
        }
        catch (FormatException e)
        {
            throw new JobFailedException("provider.bad_response", $"{provider} returned no usable image: {e.Message}");
        }

        var sniff = ContentSniffer.Sniff(bytes.AsSpan(0, Math.Min(bytes.Length, 64)));
        if (sniff.Kind != Kiln.Media.MediaKind.Image)
        {
            throw new JobFailedException("provider.bad_response", $"{provider} returned data that is not an image.");
        }

        return new EnhancedImage(bytes, sniff.ContentType, sniff.Extension, model);
    }
}

/// <summary>
/// Gemini <c>POST {base}/models/{model}:generateContent</c>: the prompt and the image inline (base64) in one user
/// turn; the answer's first inline image part is the result. The key goes in <c>x-goog-api-key</c>, not the URL,
/// so it cannot end up in a logged URL.
/// </summary>
internal sealed class GeminiEnhancer(HttpClient http, RemoteEnhanceOptions options, ProviderGate gate, TimeProvider time) : IRemoteEnhancer
{
    public string Name => "gemini";

    public async Task<EnhancedImage> EnhanceAsync(byte[] image, string contentType, string? category, CancellationToken cancellationToken)
    {
        var model = options.ModelFor(category);
        var body = new JsonObject
        {
            ["contents"] = new JsonArray(new JsonObject
            {
                ["role"] = "user",
                ["parts"] = new JsonArray(
                    new JsonObject { ["text"] = options.PromptFor(category) },
                    new JsonObject { ["inline_data"] = new JsonObject { ["mime_type"] = contentType, ["data"] = Convert.ToBase64String(image) } }),
            }),
            ["generationConfig"] = new JsonObject { ["responseModalities"] = new JsonArray("TEXT", "IMAGE") },
        }.ToJsonString();
        var answer = await ProviderHttp.SendAsync(http, () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, $"{options.BaseUrl.TrimEnd('/')}/models/{Uri.EscapeDataString(model)}:generateContent")
            {
                Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
            };
            if (!string.IsNullOrWhiteSpace(options.ApiKey))
            {
                request.Headers.Add("x-goog-api-key", options.ApiKey);
            }

            return request;
        }, RemoteEnhance.Retry(options), "Gemini", gate, time, cancellationToken);
        return Parse(answer, model);
    }

    /// <summary>The first inline image of the first candidate; a text-only answer (a refusal) is quoted back.</summary>
    public static EnhancedImage Parse(string answer, string model)
    {
        JsonArray? parts;
        try
        {
            parts = JsonNode.Parse(answer)?["candidates"]?[0]?["content"]?["parts"] as JsonArray;
        }
        catch (JsonException e)
        {
            throw new JobFailedException("provider.bad_response", $"Gemini returned a body that is not JSON: {e.Message}");
        }

        if (parts is null)
        {
            throw new JobFailedException("provider.bad_response", "Gemini returned no candidate content.");
        }

        var inline = parts.Select(p => p?["inlineData"] ?? p?["inline_data"]).FirstOrDefault(d => d is not null);
        if (inline is null)
        {
            var text = string.Join(" ", parts.Select(p => p?["text"]?.GetValue<string>()).Where(t => t is not null));
            throw new JobFailedException("provider.rejected", $"Gemini returned no image: {ProviderHttp.MessageOf(text)}");
        }

        return RemoteEnhance.Decode(inline["data"]?.GetValue<string>(), model, "Gemini");
    }
}

/// <summary>OpenAI <c>POST {base}/images/edits</c>, multipart: <c>image</c>, <c>prompt</c>, <c>model</c>, <c>n=1</c>; reads <c>data[0].b64_json</c>.</summary>
internal sealed class OpenAiImageEnhancer(HttpClient http, RemoteEnhanceOptions options, ProviderGate gate, TimeProvider time) : IRemoteEnhancer
{
    public string Name => "openai";

    public async Task<EnhancedImage> EnhanceAsync(byte[] image, string contentType, string? category, CancellationToken cancellationToken)
    {
        var model = options.ModelFor(category);
        var answer = await ProviderHttp.SendAsync(http, () =>
        {
            var form = new MultipartFormDataContent();
            var file = new ByteArrayContent(image);
            file.Headers.ContentType = new MediaTypeHeaderValue(contentType);
            form.Add(file, "image", "image." + (contentType.Split('/').LastOrDefault() ?? "jpg"));
            form.Add(new StringContent(options.PromptFor(category)), "prompt");
            form.Add(new StringContent(model), "model");
            form.Add(new StringContent("1"), "n");
            var request = new HttpRequestMessage(HttpMethod.Post, options.BaseUrl.TrimEnd('/') + "/images/edits") { Content = form };
            if (!string.IsNullOrWhiteSpace(options.ApiKey))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
            }

            return request;
        }, RemoteEnhance.Retry(options), "OpenAI images", gate, time, cancellationToken);
        try
        {
            return RemoteEnhance.Decode(JsonNode.Parse(answer)?["data"]?[0]?["b64_json"]?.GetValue<string>(), model, "OpenAI images");
        }
        catch (JsonException e)
        {
            throw new JobFailedException("provider.bad_response", $"OpenAI images returned a body that is not JSON: {e.Message}");
        }
    }
}

/// <summary>Runs the configured remote enhancer for a job and shapes the ENHANCED outcome; the handler calls this when one is configured.</summary>
internal sealed class RemoteEnhanceRunner(IRemoteEnhancer enhancer, EnhanceProviderOptions options)
{
    public async Task<JobOutcome> RunAsync(JobContext context, CancellationToken cancellationToken)
    {
        var input = context.RequireInput();
        var remote = options.Remote!;
        var size = new FileInfo(input).Length;
        if (size > remote.MaxImageBytes)
        {
            throw new JobFailedException("enhance.too_large", $"The image is {size} bytes; {enhancer.Name} enhancement takes at most {remote.MaxImageBytes} (Kiln:Enhance:*:MaxImageBytes).");
        }

        var bytes = await File.ReadAllBytesAsync(input, cancellationToken);
        var sniff = ContentSniffer.Sniff(bytes.AsSpan(0, Math.Min(bytes.Length, 64)));
        if (sniff.ContentType is not ("image/jpeg" or "image/png" or "image/webp"))
        {
            throw new JobFailedException("enhance.unsupported_input", $"{enhancer.Name} enhancement takes JPEG, PNG or WebP; this image is {sniff.ContentType}.");
        }

        context.Progress.Report(new JobProgress(5, "enhance:" + enhancer.Name));
        var result = await enhancer.EnhanceAsync(bytes, sniff.ContentType, context.Asset?.Category, cancellationToken);
        var name = "enhanced." + result.Extension;
        await File.WriteAllBytesAsync(Path.Combine(context.OutputDirectory, name), result.Bytes, cancellationToken);
        return new JobOutcome(
            new JsonObject
            {
                ["provider"] = enhancer.Name,
                ["model"] = result.Model,
                ["bytes"] = result.Bytes.LongLength,
                ["contentType"] = result.ContentType,
                ["category"] = context.Asset?.Category,
            },
            [new OutputFile("ENHANCED", name, result.ContentType)]);
    }
}
