using System.Net;
using System.Security.Cryptography;
using System.Text;
using Kiln.Security;
using Kiln.Tests.Api;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace Kiln.Tests.Security;

public sealed class ApiKeyTests
{
    [Fact]
    public async Task Keys_are_stored_as_hashes_and_no_secret_is_in_the_database()
    {
        await using var server = await KilnServer.StartAsync();
        var store = server.Get<ApiKeyStore>();
        var created = new[]
        {
            await store.CreateAsync("a client", Roles.Client, CancellationToken.None),
            await store.CreateAsync("an admin", Roles.Admin, CancellationToken.None),
            await store.CreateAsync("a worker", Roles.Worker, CancellationToken.None),
        };

        await using var conn = new NpgsqlConnection(ConnectionString(server));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("select id, key_hash, row_to_json(k)::text from api_keys k", conn);
        var rows = new Dictionary<Guid, (byte[] Hash, string Json)>();
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                rows[r.GetGuid(0)] = ((byte[])r[1], r.GetString(2));
            }
        }

        foreach (var key in created)
        {
            var (hash, json) = rows[key.Info.Id];
            Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(key.Secret)), hash);
            Assert.DoesNotContain(key.Secret, json, StringComparison.Ordinal);
            Assert.DoesNotContain(key.Secret[12..], json, StringComparison.Ordinal);
        }

        foreach (var (_, json) in rows.Values)
        {
            Assert.DoesNotContain(server.AdminKey, json, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_revoked_key_stops_working_at_once_when_keys_are_not_cached()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Security:KeyCacheSeconds"] = "0" });
        var store = server.Get<ApiKeyStore>();
        var key = await store.CreateAsync("short-lived", Roles.Client, CancellationToken.None);
        using var client = server.CreateClient(key.Secret);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/assets")).StatusCode);

        Assert.NotNull(await store.RevokeAsync(key.Info.Id.ToString(), CancellationToken.None));

        using var response = await client.GetAsync("/api/assets");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("auth.invalid_key", await JobEndpointTests.ErrorCodeAsync(response));
    }

    [Fact]
    public async Task A_revoked_key_works_at_most_for_the_cache_time()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Security:KeyCacheSeconds"] = "1" });
        var store = server.Get<ApiKeyStore>();
        var key = await store.CreateAsync("cached", Roles.Client, CancellationToken.None);
        using var client = server.CreateClient(key.Secret);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/assets")).StatusCode);

        await store.RevokeAsync(key.Info.Prefix, CancellationToken.None);
        // No bound on how soon: a loaded machine may take longer than the one-second cache; it must stop working.
        var status = await Poll.UntilAsync(
            async () =>
            {
                using var response = await client.GetAsync("/api/assets");
                return response.StatusCode;
            },
            s => s != HttpStatusCode.OK,
            "the revoked key to stop working");

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    internal static string ConnectionString(KilnServer server) =>
        server.Get<Microsoft.Extensions.Configuration.IConfiguration>().GetConnectionString("Kiln")!;
}

/// <summary>Runs <c>dotnet kiln.dll keys …</c> against a test database, as an operator would.</summary>
public sealed class KeysCommandTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-keys-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Keys_are_created_listed_and_revoked_from_the_command_line()
    {
        var created = await KilnProcess.RunAsync(Environment(), "keys", "create", "--name", "cli client", "--role", "client");
        Assert.True(created.ExitCode == 0, created.Stderr);
        var secret = Assert.Single(created.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("kiln_", secret, StringComparison.Ordinal);
        Assert.Contains("created client key", created.Stderr, StringComparison.Ordinal);

        await using var server = await KilnServer.StartAsync(
            new Dictionary<string, string?> { ["Kiln:Security:KeyCacheSeconds"] = "0" }, database: _database, dataDirectory: _data);
        using var client = server.CreateClient(secret);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/assets")).StatusCode);

        var listed = await KilnProcess.RunAsync(Environment(), "keys", "list");
        Assert.Equal(0, listed.ExitCode);
        var line = Assert.Single(listed.Stdout.Split('\n'), l => l.Contains("cli client", StringComparison.Ordinal));
        Assert.Contains("client", line, StringComparison.Ordinal);
        Assert.Contains("active", line, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, listed.Stdout, StringComparison.Ordinal);
        var id = line.Split(' ', 2)[0];

        var revoked = await KilnProcess.RunAsync(Environment(), "keys", "revoke", id);
        Assert.True(revoked.ExitCode == 0, revoked.Stderr);
        Assert.Contains($"revoked client key {id}", revoked.Stdout, StringComparison.Ordinal);

        using var after = await client.GetAsync("/api/assets");
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        var relisted = await KilnProcess.RunAsync(Environment(), "keys", "list");
        Assert.Contains("revoked", relisted.Stdout.Split('\n').Single(l => l.StartsWith(id, StringComparison.Ordinal)), StringComparison.Ordinal);

        var again = await KilnProcess.RunAsync(Environment(), "keys", "revoke", id);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("No active key", again.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_role_is_refused()
    {
        var result = await KilnProcess.RunAsync(Environment(), "keys", "create", "--name", "x", "--role", "superuser");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("superuser", result.Stderr, StringComparison.Ordinal);
    }

    private Dictionary<string, string> Environment() => new()
    {
        ["ConnectionStrings__Kiln"] = _database.ConnectionString,
        ["Kiln__DataDirectory"] = _data,
    };
}
