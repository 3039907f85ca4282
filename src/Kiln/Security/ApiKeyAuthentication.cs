using System.Security.Claims;
using Kiln.Hosting;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Kiln.Security;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c>, or <c>?access_token=</c> on the hub and WebSocket paths where browsers
/// cannot set headers. A key is cached for a few seconds so a busy client does not cost a query per request; a
/// revocation therefore takes effect within that time.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys,
    IMemoryCache cache) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = ReadSecret(Request);
        if (secret is null)
        {
            return AuthenticateResult.NoResult();
        }

        if (secret.Length > 200)
        {
            return AuthenticateResult.Fail("Malformed API key.");
        }

        var key = await cache.GetOrCreateAsync("apikey:" + Convert.ToHexString(ApiKeyStore.Hash(secret)), async entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = CacheFor;
            return await keys.FindActiveAsync(secret, Context.RequestAborted);
        });
        if (key is null)
        {
            return AuthenticateResult.Fail("Unknown or revoked API key.");
        }

        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, key.Id.ToString()),
                new Claim(ClaimTypes.Name, key.Name),
                new Claim(ClaimTypes.Role, key.Role),
            ],
            SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        await Problems.Write(Context, StatusCodes.Status401Unauthorized, "auth.required", "A valid API key is required: Authorization: Bearer <key>.");
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        await Problems.Write(Context, StatusCodes.Status403Forbidden, "auth.forbidden", "This API key may not do that.");
    }

    private static string? ReadSecret(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return header["Bearer ".Length..].Trim();
        }

        if (request.Query.TryGetValue("access_token", out var token) && !string.IsNullOrEmpty(token)
            && (request.Path.StartsWithSegments("/hubs") || request.Path.StartsWithSegments("/api/workers/connect")))
        {
            return token.ToString();
        }

        return null;
    }
}

/// <summary>Who is calling, as the endpoints need it.</summary>
internal static class CallerExtensions
{
    public static Guid KeyId(this ClaimsPrincipal user) =>
        Guid.Parse(user.FindFirstValue(ClaimTypes.NameIdentifier) ?? throw new InvalidOperationException("Not authenticated."));

    public static bool IsAdmin(this ClaimsPrincipal user) => user.IsInRole(Roles.Admin);

    /// <summary>The owner filter for queries: null for an admin (sees everything), the key's id for a client.</summary>
    public static Guid? OwnerScope(this ClaimsPrincipal user) => user.IsAdmin() ? null : user.KeyId();
}
