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

    /// <summary>Burst allowance on top of the per-key rate.</summary>
    [Range(1, 1_000_000)]
    public int PerKeyBurst { get; set; } = 400;

    /// <summary>Largest body of a non-upload request (JSON). Uploads have their own limit.</summary>
    [Range(1, long.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>On first start with no admin key, create one and print it once.</summary>
    public bool CreateAdminKeyOnFirstStart { get; set; } = true;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var origin in CorsOrigins)
        {
            if (origin != "*" && !Uri.TryCreate(origin, UriKind.Absolute, out _))
            {
                yield return new ValidationResult($"Kiln:Security:CorsOrigins contains '{origin}', which is not an absolute origin URL.", [nameof(CorsOrigins)]);
            }
        }
    }
}
