using System.ComponentModel.DataAnnotations;

namespace Kiln.Security;

/// <summary>Section <c>Kiln:Security</c> (environment prefix <c>Kiln__Security__</c>).</summary>
internal sealed class SecurityOptions : IValidatableObject
{
    public const string Section = "Kiln:Security";

    /// <summary>Origins allowed by CORS, e.g. <c>Kiln__Security__CorsOrigins__0=https://app.example</c>. Empty: no cross-origin access.</summary>
    public string[] CorsOrigins { get; set; } = [];

    /// <summary>Requests per second across all callers before 429. 0 turns the global limit off.</summary>
    [Range(0, 1_000_000)]
    public int GlobalRequestsPerSecond { get; set; } = 2000;

    /// <summary>Requests per second for one API key (or one IP without a key). 0 turns it off.</summary>
    [Range(0, 1_000_000)]
    public int PerKeyRequestsPerSecond { get; set; } = 200;

    /// <summary>The per-key token bucket's size: how many requests one key may make at once after being idle.</summary>
    [Range(1, 1_000_000)]
    public int PerKeyBurst { get; set; } = 400;

    /// <summary>Largest body of a non-upload request (JSON). Uploads have their own limit.</summary>
    [Range(1, long.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>On first start with no admin key, create one and print it once.</summary>
    public bool CreateAdminKeyOnFirstStart { get; set; } = true;

    /// <summary>
    /// How long a looked-up API key is cached. A revoked key keeps working for at most this long; 0 looks every
    /// request up in the database.
    /// </summary>
    [Range(0, 3600)]
    public double KeyCacheSeconds { get; set; } = 5;

    /// <summary>
    /// Require an admin key on <c>/metrics</c> (Prometheus: <c>authorization: { credentials: &lt;key&gt; }</c>). Off by
    /// default: the server listens on 127.0.0.1 unless told otherwise, and scrapers usually sit on a private network.
    /// </summary>
    public bool MetricsRequireAdminKey { get; set; }

    /// <summary>Lifetime of a signed file URL when the request does not ask for less.</summary>
    [Range(1, 7 * 86_400)]
    public int SignedUrlSeconds { get; set; } = 900;

    /// <summary>The longest lifetime a client may ask for a signed file URL.</summary>
    [Range(1, 7 * 86_400)]
    public int SignedUrlMaxSeconds { get; set; } = 86_400;

    /// <summary>
    /// HMAC key for signed URLs, base64, at least 32 bytes. Empty: a random key is created once in the data
    /// directory (<c>keys/url-signing.key</c>), which every node sharing that directory uses.
    /// </summary>
    public string? UrlSigningKey { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (SignedUrlSeconds > SignedUrlMaxSeconds)
        {
            yield return new ValidationResult(
                $"Kiln:Security:SignedUrlSeconds ({SignedUrlSeconds}) must not exceed Kiln:Security:SignedUrlMaxSeconds ({SignedUrlMaxSeconds}).", [nameof(SignedUrlSeconds)]);
        }

        if (!string.IsNullOrEmpty(UrlSigningKey) && !IsStrongBase64Key(UrlSigningKey))
        {
            yield return new ValidationResult(
                "Kiln:Security:UrlSigningKey (env Kiln__Security__UrlSigningKey) must be base64 of at least 32 bytes, e.g. `openssl rand -base64 32`.", [nameof(UrlSigningKey)]);
        }

        foreach (var origin in CorsOrigins)
        {
            // An origin is scheme://host[:port] exactly; a path or trailing slash would never match a browser's Origin header.
            if (origin != "*" && !(Uri.TryCreate(origin, UriKind.Absolute, out var uri)
                && uri.Scheme is "http" or "https"
                && string.Equals(uri.GetLeftPart(UriPartial.Authority), origin, StringComparison.OrdinalIgnoreCase)))
            {
                yield return new ValidationResult(
                    $"Kiln:Security:CorsOrigins contains '{origin}', which is not an origin like https://app.example or http://localhost:5173 (no path, no trailing slash).", [nameof(CorsOrigins)]);
            }
        }
    }

    private static bool IsStrongBase64Key(string value)
    {
        var buffer = new byte[value.Length];
        return Convert.TryFromBase64String(value, buffer, out var length) && length >= 32;
    }
}
