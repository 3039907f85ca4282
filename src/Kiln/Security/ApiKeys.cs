using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Kiln.Security;

internal static class Roles
{
    public const string Admin = "admin";
    public const string Client = "client";
    public const string Worker = "worker";

    /// <summary>Not a key: the caller of a signed file URL. Never stored.</summary>
    public const string SignedUrl = "signed-url";

    public static bool IsValid(string role) => role is Admin or Client or Worker;
}

internal sealed record ApiKeyInfo(Guid Id, string Name, string Role, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>A freshly created key: the secret is shown once and only its hash is stored.</summary>
internal sealed record CreatedApiKey(ApiKeyInfo Info, string Secret);

/// <summary>
/// API keys (admin, client) and worker tokens, stored as SHA-256 hashes. Keys are 256 random bits, so a fast hash
/// is enough: there is no password to guess, and lookups by hash stay one index probe.
/// </summary>
internal sealed class ApiKeyStore(NpgsqlDataSource dataSource)
{
    public async Task<CreatedApiKey> CreateAsync(string name, string role, CancellationToken cancellationToken)
    {
        if (!Roles.IsValid(role))
        {
            throw new ArgumentException($"Unknown role '{role}'; use admin, client or worker.", nameof(role));
        }

        var secret = (role == Roles.Worker ? "kiln_wt_" : "kiln_") + Base64Url(RandomNumberGenerator.GetBytes(32));
        var id = Guid.CreateVersion7();
        var prefix = secret[..Math.Min(secret.Length, role == Roles.Worker ? 14 : 11)];
        await using var cmd = dataSource.CreateCommand("""
            insert into api_keys (id, name, role, key_hash, prefix) values (@id, @name, @role, @hash, @prefix)
            returning created_at
            """);
        cmd.Parameters.AddWithValue("id", id);
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("role", role);
        cmd.Parameters.AddWithValue("hash", Hash(secret));
        cmd.Parameters.AddWithValue("prefix", prefix);
        var created = (DateTime)(await cmd.ExecuteScalarAsync(cancellationToken))!;
        return new CreatedApiKey(new ApiKeyInfo(id, name, role, prefix, new DateTimeOffset(created, TimeSpan.Zero), null), secret);
    }

    public async Task<ApiKeyInfo?> FindActiveAsync(string secret, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select id, name, role, prefix, created_at, revoked_at from api_keys where key_hash = @hash and revoked_at is null
            """);
        cmd.Parameters.AddWithValue("hash", Hash(secret));
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? Read(r) : null;
    }

    public async Task<List<ApiKeyInfo>> ListAsync(string? role, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select id, name, role, prefix, created_at, revoked_at from api_keys where (@role::text is null or role = @role) order by created_at
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string?>("role", NpgsqlTypes.NpgsqlDbType.Text) { TypedValue = role });
        var list = new List<ApiKeyInfo>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            list.Add(Read(r));
        }

        return list;
    }

    /// <summary>Revokes a key by id or by its printed prefix; returns the revoked key or null.</summary>
    public async Task<ApiKeyInfo?> RevokeAsync(string idOrPrefix, CancellationToken cancellationToken)
    {
        var byId = Guid.TryParse(idOrPrefix, out var id);
        await using var cmd = dataSource.CreateCommand("""
            update api_keys set revoked_at = now()
            where revoked_at is null and (id = @id or (@byId = false and prefix = @prefix))
            returning id, name, role, prefix, created_at, revoked_at
            """);
        cmd.Parameters.AddWithValue("id", byId ? id : Guid.Empty);
        cmd.Parameters.AddWithValue("byId", byId);
        cmd.Parameters.AddWithValue("prefix", idOrPrefix);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? Read(r) : null;
    }

    /// <summary>Of the given keys, those revoked (or deleted) since.</summary>
    public async Task<HashSet<Guid>> RevokedAsync(IReadOnlyCollection<Guid> keyIds, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("""
            select k from unnest(@keys) as k where not exists (select 1 from api_keys a where a.id = k and a.revoked_at is null)
            """);
        cmd.Parameters.AddWithValue("keys", keyIds.ToArray());
        var revoked = new HashSet<Guid>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            revoked.Add(r.GetGuid(0));
        }

        return revoked;
    }

    public async Task<bool> AnyAdminAsync(CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand("select exists (select 1 from api_keys where role = 'admin' and revoked_at is null)");
        return (bool)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    private static ApiKeyInfo Read(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3),
        r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
