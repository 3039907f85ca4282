using System.ComponentModel.DataAnnotations;

namespace Kiln.Transcription;

/// <summary>Section <c>Kiln:Transcription</c> (docs/transcription.md).</summary>
internal sealed class TranscriptionOptions : IValidatableObject
{
    public const string Section = "Kiln:Transcription";

    /// <summary>pocketsphinx, openai or none. Empty: openai when an OpenAI base URL or key is set, else pocketsphinx.</summary>
    public string? Provider { get; set; }

    [Required(AllowEmptyStrings = false)]
    public string PocketsphinxPath { get; set; } = "pocketsphinx_continuous";

    /// <summary>Acoustic model, language model and dictionary; empty uses the Debian package's en-US defaults.</summary>
    public string? PocketsphinxHmm { get; set; }

    public string? PocketsphinxLm { get; set; }

    public string? PocketsphinxDict { get; set; }

    public OpenAiTranscriptionOptions OpenAi { get; set; } = new();

    /// <summary>Largest transcript a person may PUT, in characters and in segments.</summary>
    [Range(1, 50_000_000)]
    public int MaxTextChars { get; set; } = 2_000_000;

    [Range(1, 1_000_000)]
    public int MaxSegments { get; set; } = 100_000;

    public string EffectiveProvider =>
        string.IsNullOrWhiteSpace(Provider)
            ? (!string.IsNullOrWhiteSpace(OpenAi.ApiKey) || !string.IsNullOrWhiteSpace(OpenAi.BaseUrl) ? "openai" : "pocketsphinx")
            : Provider.Trim().ToLowerInvariant();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (EffectiveProvider is not ("pocketsphinx" or "openai" or "none"))
        {
            yield return new ValidationResult($"{Section}:Provider must be pocketsphinx, openai or none (was '{Provider}').", [nameof(Provider)]);
        }

        if (EffectiveProvider == "openai" && !Uri.TryCreate(OpenAi.EffectiveBaseUrl, UriKind.Absolute, out _))
        {
            yield return new ValidationResult($"{Section}:OpenAi:BaseUrl must be an absolute URL.", [nameof(OpenAi)]);
        }

        foreach (var r in OpenAi.Check())
        {
            yield return r;
        }
    }
}

/// <summary>Any OpenAI-compatible <c>/v1/audio/transcriptions</c> server: OpenAI itself, whisper.cpp, faster-whisper.</summary>
internal sealed class OpenAiTranscriptionOptions
{
    /// <summary>Up to and including <c>/v1</c>. Kiln__Transcription__OpenAi__BaseUrl.</summary>
    public string? BaseUrl { get; set; }

    /// <summary>Bearer key; from configuration or environment only, never logged or returned.</summary>
    public string? ApiKey { get; set; }

    public string Model { get; set; } = "whisper-1";

    public string? Language { get; set; }

    /// <summary>Largest audio file per request; OpenAI's limit is 25 MB. Longer audio is split into chunks.</summary>
    public long MaxRequestBytes { get; set; } = 25L * 1024 * 1024;

    public double TimeoutSeconds { get; set; } = 300;

    public int MaxAttempts { get; set; } = 4;

    /// <summary>Longest wait a 429's Retry-After may impose before the next attempt.</summary>
    public double MaxRetryAfterSeconds { get; set; } = 120;

    public double BackoffSeconds { get; set; } = 1;

    public string EffectiveBaseUrl => string.IsNullOrWhiteSpace(BaseUrl) ? "https://api.openai.com/v1" : BaseUrl.TrimEnd('/');

    internal IEnumerable<ValidationResult> Check()
    {
        const string p = TranscriptionOptions.Section + ":OpenAi:";
        if (MaxRequestBytes < 64 * 1024)
        {
            yield return new ValidationResult($"{p}MaxRequestBytes must be at least 65536.");
        }

        if (TimeoutSeconds is <= 0 or > 3600)
        {
            yield return new ValidationResult($"{p}TimeoutSeconds must be between 0 and 3600.");
        }

        if (MaxAttempts is < 1 or > 20)
        {
            yield return new ValidationResult($"{p}MaxAttempts must be between 1 and 20.");
        }

        if (MaxRetryAfterSeconds is < 0 or > 3600 || BackoffSeconds is < 0 or > 600)
        {
            yield return new ValidationResult($"{p}MaxRetryAfterSeconds must be 0–3600 and BackoffSeconds 0–600.");
        }
    }
}
