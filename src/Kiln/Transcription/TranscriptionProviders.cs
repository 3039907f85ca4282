using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Media.Transcription;
using Kiln.Processing;
using Kiln.Providers;
using Microsoft.Extensions.Options;

namespace Kiln.Transcription;

/// <summary>A speech-to-text backend. <see cref="MaxRequestBytes"/> non-null makes the handler cut the audio into chunks.</summary>
internal interface ITranscriptionProvider
{
    string Name { get; }

    string? Model { get; }

    long? MaxRequestBytes { get; }

    Task<TranscriptText> TranscribeAsync(string wavPath, string? language, CancellationToken cancellationToken);
}

/// <summary>Local recognition with Debian's pocketsphinx; no chunking (it segments long audio itself).</summary>
internal sealed class PocketsphinxProvider(IOptions<TranscriptionOptions> options) : ITranscriptionProvider
{
    private readonly PocketsphinxRecognizer _recognizer = new(new PocketsphinxSettings
    {
        ExecutablePath = options.Value.PocketsphinxPath,
        HmmPath = options.Value.PocketsphinxHmm,
        LanguageModelPath = options.Value.PocketsphinxLm,
        DictionaryPath = options.Value.PocketsphinxDict,
    });

    public string Name => "pocketsphinx";

    public string? Model => "en-us";

    public long? MaxRequestBytes => null;

    public Task<TranscriptText> TranscribeAsync(string wavPath, string? language, CancellationToken cancellationToken) =>
        _recognizer.RecognizeAsync(wavPath, cancellationToken);
}

/// <summary>
/// <c>POST {base}/audio/transcriptions</c>, multipart, <c>response_format=verbose_json</c> for segments. Plain
/// HttpClient rather than the OpenAI SDK: the SDK brings its own retry policy that would hide 429s from ours and it
/// does not speak to every compatible server the same way; the request is one multipart form.
/// </summary>
internal sealed class OpenAiTranscriptionProvider(HttpClient http, IOptions<TranscriptionOptions> options, ProviderGate gate, TimeProvider time) : ITranscriptionProvider
{
    private readonly OpenAiTranscriptionOptions _o = options.Value.OpenAi;

    public string Name => "openai";

    public string? Model => _o.Model;

    public long? MaxRequestBytes => _o.MaxRequestBytes;

    public async Task<TranscriptText> TranscribeAsync(string wavPath, string? language, CancellationToken cancellationToken)
    {
        language ??= _o.Language;
        var retry = new ProviderRetry(
            TimeSpan.FromSeconds(_o.TimeoutSeconds), _o.MaxAttempts, TimeSpan.FromSeconds(_o.MaxRetryAfterSeconds), TimeSpan.FromSeconds(_o.BackoffSeconds));
        var body = await ProviderHttp.SendAsync(http, () => Build(wavPath, language), retry, "OpenAI transcription", gate, time, cancellationToken);
        return Parse(body);
    }

    /// <summary>Reads a verbose_json answer: text, language and segments (start, end, text in seconds).</summary>
    public static TranscriptText Parse(string body)
    {
        try
        {
            var root = JsonNode.Parse(body) as JsonObject ?? throw new JsonException("not an object");
            var text = root["text"]?.GetValue<string>() ?? throw new JsonException("no text");
            var segments = new List<TranscriptSegment>();
            if (root["segments"] is JsonArray array)
            {
                foreach (var s in array.OfType<JsonObject>())
                {
                    segments.Add(new TranscriptSegment(
                        s["start"]!.GetValue<double>(), s["end"]!.GetValue<double>(), s["text"]?.GetValue<string>()?.Trim() ?? ""));
                }
            }

            return new TranscriptText(text.Trim(), segments, root["language"]?.GetValue<string>());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            throw new JobFailedException("provider.bad_response", $"OpenAI transcription returned a body that is not verbose_json: {e.Message}");
        }
    }

    private HttpRequestMessage Build(string wavPath, string? language)
    {
        var form = new MultipartFormDataContent();
        var file = new StreamContent(File.OpenRead(wavPath));
        file.Headers.ContentType = new MediaTypeHeaderValue("audio/wav");
        form.Add(file, "file", Path.GetFileName(wavPath));
        form.Add(new StringContent(_o.Model), "model");
        form.Add(new StringContent("verbose_json"), "response_format");
        form.Add(new StringContent("segment"), "timestamp_granularities[]");
        if (!string.IsNullOrWhiteSpace(language))
        {
            form.Add(new StringContent(language.ToLower(CultureInfo.InvariantCulture)), "language");
        }

        var request = new HttpRequestMessage(HttpMethod.Post, _o.EffectiveBaseUrl + "/audio/transcriptions") { Content = form };
        if (!string.IsNullOrWhiteSpace(_o.ApiKey))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _o.ApiKey);
        }

        return request;
    }
}
