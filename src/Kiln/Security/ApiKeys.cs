using System.Collections.Concurrent;
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

/// <summary>A key as listed: never its secret or hash. <see cref="LastUsedAt"/> is updated at most once a minute.</summary>
internal sealed record ApiKeyInfo(Guid Id, string Name, string Role, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt = null);

/// <summary>A freshly created key: the secret is shown once and only its hash is stored.</summary>
internal sealed record CreatedApiKey(ApiKeyInfo Info, string Secret);

/// <summary>
/// API keys (admin, client) and worker tokens, stored as SHA-256 hashes. Keys are 256 random bits, so a fast hash
/// is enough: there is no password to guess, and lookups by hash stay one index probe.
/// </summary>
internal sealed class ApiKeyStore(NpgsqlDataSource dataSource)
{
    private const string Columns = "id, name, role, prefix, created_at, revoked_at, last_used_at";

    /// <summary>
    /// Keys revoked through this process. Authentication caches keys for a few seconds; a key revoked here is refused
    /// at once instead (other nodes take up to the cache time).
    /// </summary>
    private readonly ConcurrentDictionary<Guid, byte> _revokedHere = new();

    public bool WasRevokedHere(Guid id) => _revokedHere.ContainsKey(id);

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

    /// <summary>The active key with this secret; notes that it was used (at most once a minute, so lookups stay cheap).</summary>
    public async Task<ApiKeyInfo?> FindActiveAsync(string secret, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand($"""
            with key as (select {Columns} from api_keys where key_hash = @hash and revoked_at is null),
            touched as (
                update api_keys a set last_used_at = now() from key
                where a.id = key.id and (key.last_used_at is null or key.last_used_at < now() - interval '1 minute'))
            select {Columns} from key
            """);
        cmd.Parameters.AddWithValue("hash", Hash(secret));
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? Read(r) : null;
    }

    public async Task<List<ApiKeyInfo>> ListAsync(string? role, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand($"""
            select {Columns} from api_keys where (@role::text is null or role = @role) order by created_at
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
        await using var cmd = dataSource.CreateCommand($"""
            update api_keys set revoked_at = now()
            where revoked_at is null and (id = @id or (@byId = false and prefix = @prefix))
            returning {Columns}
            """);
        cmd.Parameters.AddWithValue("id", byId ? id : Guid.Empty);
        cmd.Parameters.AddWithValue("byId", byId);
        cmd.Parameters.AddWithValue("prefix", idOrPrefix);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await r.ReadAsync(cancellationToken))
        {
            return null;
        }

        var revoked = Read(r);
        _revokedHere[revoked.Id] = 0;
        return revoked;
    }

    /// <summary>A key by id, revoked or not.</summary>
    public async Task<ApiKeyInfo?> GetAsync(Guid id, CancellationToken cancellationToken)
    {
        await using var cmd = dataSource.CreateCommand($"select {Columns} from api_keys where id = @id");
        cmd.Parameters.AddWithValue("id", id);
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
        r.GetFieldValue<DateTimeOffset>(4), r.IsDBNull(5) ? null : r.GetFieldValue<DateTimeOffset>(5), r.IsDBNull(6) ? null : r.GetFieldValue<DateTimeOffset>(6));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
