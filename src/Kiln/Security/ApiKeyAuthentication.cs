using System.Security.Claims;
using Kiln.Core;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace Kiln.Security;

/// <summary>
/// <c>Authorization: Bearer &lt;key&gt;</c>, or <c>?access_token=</c> on the hub and WebSocket paths where browsers
/// cannot set headers, or a signed file URL (<c>?expires=…&amp;sig=…</c>) on a file's download and content paths.
/// A key is cached for <see cref="SecurityOptions.KeyCacheSeconds"/> so a busy client does not cost a query per
/// request; a revocation therefore takes effect within that time.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys,
    UrlSigner signer,
    IOptions<SecurityOptions> security,
    IMemoryCache cache) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    /// <summary>The claim naming the one file a signed URL opens.</summary>
    public const string FileClaim = "kiln:file";

    private const string FailureCodeItem = "kiln:auth-failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var secret = ReadSecret(Request);
        if (secret is null)
        {
            return Request.Query.ContainsKey("sig") ? AuthenticateSignedUrl() : AuthenticateResult.NoResult();
        }

        if (secret.Length > 200)
        {
            return Fail("auth.invalid_key", "Malformed API key.");
        }

        var cacheFor = TimeSpan.FromSeconds(security.Value.KeyCacheSeconds);
        var key = cacheFor > TimeSpan.Zero
            ? await cache.GetOrCreateAsync("apikey:" + Convert.ToHexString(ApiKeyStore.Hash(secret)), async entry =>
            {
                entry.AbsoluteExpirationRelativeToNow = cacheFor;
                return await keys.FindActiveAsync(secret, Context.RequestAborted);
            })
            : await keys.FindActiveAsync(secret, Context.RequestAborted);
        if (key is null || keys.WasRevokedHere(key.Id))
        {
            return Fail("auth.invalid_key", "Unknown or revoked API key.");
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
        var (code, detail) = Context.Items[FailureCodeItem] as (string, string)?
            ?? ("auth.required", "A valid API key is required: Authorization: Bearer <key>.");
        await Problems.Write(Context, StatusCodes.Status401Unauthorized, code, detail);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        await Problems.Write(Context, StatusCodes.Status403Forbidden, "auth.forbidden", "This API key may not do that.");
    }

    /// <summary>A signed URL stands for a key only on <c>/api/files/{id}/download</c> and <c>/api/files/{id}/content/…</c>.</summary>
    private AuthenticateResult AuthenticateSignedUrl()
    {
        if (SignedFileId(Request.Path) is not { } fileId)
        {
            return AuthenticateResult.NoResult();
        }

        return signer.Verify(fileId, Request.Query["expires"], Request.Query["sig"]) switch
        {
            SignatureCheck.Valid => AuthenticateResult.Success(new AuthenticationTicket(
                new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Role, Roles.SignedUrl), new Claim(FileClaim, fileId.ToString())], SchemeName)),
                SchemeName)),
            SignatureCheck.Expired => Fail("auth.url_expired", "This signed URL has expired; ask for a new one."),
            _ => Fail("auth.bad_signature", "This signed URL's signature does not match; it was altered or is for another file."),
        };
    }

    private AuthenticateResult Fail(string code, string detail)
    {
        Context.Items[FailureCodeItem] = (code, detail);
        return AuthenticateResult.Fail(detail);
    }

    private static Guid? SignedFileId(PathString path)
    {
        var segments = (path.Value ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries);
        return segments.Length >= 4 && segments[0] == "api" && segments[1] == "files"
            && (segments is [_, _, _, "download"] || segments[3] == "content")
            && Guid.TryParse(segments[2], out var id) ? id : null;
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

    /// <summary>The file a signed URL opens, or null when the caller is an API key.</summary>
    public static Guid? SignedFileId(this ClaimsPrincipal user) =>
        user.IsInRole(Roles.SignedUrl) && Guid.TryParse(user.FindFirstValue(ApiKeyAuthenticationHandler.FileClaim), out var id) ? id : null;

    /// <summary>The owner filter for queries: null for an admin (sees everything), the key's id for a client.</summary>
    public static Guid? OwnerScope(this ClaimsPrincipal user) => user.IsAdmin() ? null : user.KeyId();
}
