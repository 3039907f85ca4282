using System.ComponentModel.DataAnnotations;

namespace Kiln.Enhance;

/// <summary>Section <c>Kiln:Enhance</c>: who enhances images in <c>Kiln:Images:EnhanceCategories</c> (docs/images.md).</summary>
internal sealed class EnhanceProviderOptions : IValidatableObject
{
    public const string Section = "Kiln:Enhance";

    /// <summary>local (libvips auto-levels, the default), gemini or openai.</summary>
    public string Provider { get; set; } = "local";

    public RemoteEnhanceOptions Gemini { get; set; } = new()
    {
        BaseUrl = "https://generativelanguage.googleapis.com/v1beta",
        Model = "gemini-2.5-flash-image",
    };

    public RemoteEnhanceOptions OpenAi { get; set; } = new()
    {
        BaseUrl = "https://api.openai.com/v1",
        Model = "gpt-image-1",
    };

    public string EffectiveProvider => (Provider ?? "local").Trim().ToLowerInvariant();

    public RemoteEnhanceOptions? Remote => EffectiveProvider switch
    {
        "gemini" => Gemini,
        "openai" => OpenAi,
        _ => null,
    };

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (EffectiveProvider is not ("local" or "gemini" or "openai"))
        {
            yield return new ValidationResult($"{Section}:Provider must be local, gemini or openai (was '{Provider}').", [nameof(Provider)]);
        }

        if (Remote is { } r && !Uri.TryCreate(r.BaseUrl, UriKind.Absolute, out _))
        {
            yield return new ValidationResult($"{Section}:{(EffectiveProvider == "gemini" ? "Gemini" : "OpenAi")}:BaseUrl must be an absolute URL.");
        }

        if (Remote is { } remote && (remote.TimeoutSeconds is <= 0 or > 3600 || remote.MaxAttempts is < 1 or > 20 || remote.MaxImageBytes < 1024))
        {
            yield return new ValidationResult($"{Section}: TimeoutSeconds must be 0–3600, MaxAttempts 1–20, MaxImageBytes ≥ 1024.");
        }
    }
}

/// <summary>One remote image model: where, which model, and the prompt — each overridable per category.</summary>
internal sealed class RemoteEnhanceOptions
{
    public string BaseUrl { get; set; } = "";

    /// <summary>From configuration or environment only (e.g. Kiln__Enhance__Gemini__ApiKey); never logged or returned.</summary>
    public string? ApiKey { get; set; }

    public string Model { get; set; } = "";

    public string Prompt { get; set; } =
        "Enhance this portrait photo for display: balanced exposure and white balance, natural skin tones, gentle " +
        "sharpening. Do not change the person's identity, pose, expression, clothing or the background. Return only the image.";

    /// <summary>Per category (DISP, DECD, …): a model and a prompt that replace the defaults above.</summary>
    public Dictionary<string, string> Models { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public Dictionary<string, string> Prompts { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    public double TimeoutSeconds { get; set; } = 120;

    public int MaxAttempts { get; set; } = 4;

    public double MaxRetryAfterSeconds { get; set; } = 120;

    public double BackoffSeconds { get; set; } = 1;

    /// <summary>Largest image sent; bigger originals fail with enhance.too_large rather than a provider 400.</summary>
    public long MaxImageBytes { get; set; } = 20L * 1024 * 1024;

    public string ModelFor(string? category) => category is not null && Models.TryGetValue(category, out var m) ? m : Model;

    public string PromptFor(string? category) => category is not null && Prompts.TryGetValue(category, out var p) ? p : Prompt;
}
