using System.Security.Claims;
using Kiln.Core;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kiln.Security;

internal sealed record CreateKeyRequest(string? Name, string? Role);

/// <summary>A new key: the secret appears in this response only; the server keeps its hash.</summary>
internal sealed record CreatedKeyResponse(Guid Id, string Name, string Role, string Prefix, string Secret, DateTimeOffset CreatedAt);

/// <summary><c>/api/keys</c> (admin): what <c>kiln keys</c> does on the command line, for the dashboard.</summary>
internal static class KeyEndpoints
{
    public const string Prefix = "/api/keys";

    public static RouteGroupBuilder MapKeys(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix).WithTags("Keys").ProducesCommonProblems().RequireAuthorization(SecurityExtensions.AdminPolicy);
        group.MapGet("/", List);
        group.MapGet("/{id:guid}", Get);
        group.MapPost("/", Create);
        group.MapDelete("/{id:guid}", Revoke).ProducesProblem(StatusCodes.Status409Conflict);
        return group;
    }

    /// <summary>Every key, revoked ones included (the page shows when), oldest first; <c>?role=</c> narrows it.</summary>
    private static async Task<Results<Ok<List<ApiKeyInfo>>, ProblemHttpResult>> List(ApiKeyStore keys, CancellationToken ct, string? role = null)
    {
        if (role is not null && !Roles.IsValid(role))
        {
            return Problems.BadRequest("keys.bad_role", "role must be admin, client or worker.");
        }

        return TypedResults.Ok(await keys.ListAsync(role, ct));
    }

    /// <summary>
    /// One key. Besides being useful, a GET here keeps <c>GET /api/keys/not-a-guid</c> a 404: with only DELETE on
    /// this route, routing would answer 405 for any path under it before checking the id.
    /// </summary>
    private static async Task<Results<Ok<ApiKeyInfo>, ProblemHttpResult>> Get(Guid id, ApiKeyStore keys, CancellationToken ct) =>
        await keys.GetAsync(id, ct) is { } key ? TypedResults.Ok(key) : Problems.NotFound("Key");

    private static async Task<Results<Created<CreatedKeyResponse>, ProblemHttpResult>> Create(CreateKeyRequest request, ApiKeyStore keys, CancellationToken ct)
    {
        var name = request.Name?.Trim() ?? "";
        if (name.Length is 0 or > 100 || name.Any(char.IsControl))
        {
            return Problems.BadRequest("keys.bad_name", "name must be 1 to 100 characters, without control characters.");
        }

        if (request.Role is not { } role || !Roles.IsValid(role))
        {
            return Problems.BadRequest("keys.bad_role", "role must be admin, client or worker.");
        }

        var created = await keys.CreateAsync(name, role, ct);
        var info = created.Info;
        return TypedResults.Created($"{Prefix}/{info.Id}", new CreatedKeyResponse(info.Id, info.Name, info.Role, info.Prefix, created.Secret, info.CreatedAt));
    }

    /// <summary>
    /// Revokes a key; revoking one already revoked is a no-op. The key making the request cannot revoke itself: an
    /// admin clicking the wrong row would lock themselves out mid-session. Connected workers and hub connections of
    /// the key are closed by their watchers.
    /// </summary>
    private static async Task<Results<NoContent, ProblemHttpResult>> Revoke(Guid id, ClaimsPrincipal user, ApiKeyStore keys, CancellationToken ct)
    {
        if (await keys.GetAsync(id, ct) is not { } key)
        {
            return Problems.NotFound("Key");
        }

        if (key.Id == user.KeyId())
        {
            return Problems.Conflict("keys.self_revoke", "A key cannot revoke itself; revoke it with another admin key or with kiln keys revoke.");
        }

        if (key.RevokedAt is null)
        {
            await keys.RevokeAsync(id.ToString(), ct);
        }

        return TypedResults.NoContent();
    }
}
