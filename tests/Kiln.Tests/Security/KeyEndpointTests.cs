using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Security;

public sealed class KeyEndpointTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task An_admin_creates_a_key_shown_once_lists_it_without_secrets_and_revoking_it_stops_it_at_once()
    {
        using var created = await _server.Admin.PostAsJsonAsync("/api/keys", new { name = "phone app", role = "client" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var key = (await created.Content.ReadFromJsonAsync<JsonObject>())!;
        var id = key["id"]!.GetValue<Guid>();
        var secret = key["secret"]!.GetValue<string>();
        Assert.Equal($"/api/keys/{id}", created.Headers.Location!.OriginalString);
        Assert.Equal(("phone app", "client"), (key["name"]!.GetValue<string>(), key["role"]!.GetValue<string>()));
        Assert.StartsWith(key["prefix"]!.GetValue<string>(), secret, StringComparison.Ordinal);

        using var client = _server.CreateClient(secret);
        using (var works = await client.GetAsync("/api/assets"))
        {
            Assert.Equal(HttpStatusCode.OK, works.StatusCode);
        }

        var listed = await ListedAsync(id);
        Assert.Equal(["createdAt", "id", "lastUsedAt", "name", "prefix", "role"], listed.Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(secret, listed.ToJsonString(), StringComparison.Ordinal);

        using (var revoke = await _server.Admin.DeleteAsync($"/api/keys/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        // Within the authentication cache's lifetime, yet refused: the revocation went through this server.
        using (var refused = await client.GetAsync("/api/assets"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        Assert.NotNull((await ListedAsync(id))["revokedAt"]);
        using var again = await _server.Admin.DeleteAsync($"/api/keys/{id}");
        Assert.Equal(HttpStatusCode.NoContent, again.StatusCode);
    }

    [Fact]
    public async Task Created_keys_of_each_role_carry_that_role()
    {
        foreach (var role in new[] { "admin", "client", "worker" })
        {
            using var created = await _server.Admin.PostAsJsonAsync("/api/keys", new { name = role + " key", role });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var id = (await created.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<Guid>();
            Assert.Equal(role, (await ListedAsync(id))["role"]!.GetValue<string>());
        }

        var workers = (await _server.Admin.GetFromJsonAsync<JsonArray>("/api/keys?role=worker"))!;
        Assert.All(workers, k => Assert.Equal("worker", k!["role"]!.GetValue<string>()));
        Assert.Contains(workers, k => k!["name"]!.GetValue<string>() == "worker key");
    }

    [Fact]
    public async Task An_admin_cannot_revoke_the_key_it_is_using_and_unknown_ids_answer_404()
    {
        var self = (await _server.Admin.GetFromJsonAsync<JsonArray>("/api/keys"))!.Single(k => k!["name"]!.GetValue<string>() == "test admin")!["id"]!.GetValue<Guid>();
        using var selfRevoke = await _server.Admin.DeleteAsync($"/api/keys/{self}");
        Assert.Equal(HttpStatusCode.Conflict, selfRevoke.StatusCode);
        Assert.Equal("keys.self_revoke", await CodeAsync(selfRevoke));
        using var stillWorks = await _server.Admin.GetAsync("/api/keys");
        Assert.Equal(HttpStatusCode.OK, stillWorks.StatusCode);

        using var unknown = await _server.Admin.DeleteAsync($"/api/keys/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        var one = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/keys/{self}");
        Assert.Equal("test admin", one!["name"]!.GetValue<string>());
        using var notAnId = await _server.Admin.GetAsync("/api/keys/url-signing.key");
        Assert.Equal(HttpStatusCode.NotFound, notAnId.StatusCode);
    }

    [Fact]
    public async Task Bad_names_and_roles_are_refused_with_their_codes()
    {
        using var badRole = await _server.Admin.PostAsJsonAsync("/api/keys", new { name = "x", role = "root" });
        Assert.Equal(HttpStatusCode.BadRequest, badRole.StatusCode);
        Assert.Equal("keys.bad_role", await CodeAsync(badRole));

        using var noName = await _server.Admin.PostAsJsonAsync("/api/keys", new { name = " ", role = "client" });
        Assert.Equal("keys.bad_name", await CodeAsync(noName));
    }

    [Fact]
    public async Task Client_keys_may_not_list_create_or_revoke_keys()
    {
        var (client, clientId) = await _server.CreateClientKeyAsync();
        using var list = await client.GetAsync("/api/keys");
        using var create = await client.PostAsJsonAsync("/api/keys", new { name = "mine", role = "admin" });
        using var revoke = await client.DeleteAsync($"/api/keys/{clientId}");

        Assert.All([list, create, revoke], r => Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode));
        Assert.DoesNotContain((await _server.Admin.GetFromJsonAsync<JsonArray>("/api/keys"))!, k => k!["name"]!.GetValue<string>() == "mine");
    }

    private async Task<JsonObject> ListedAsync(Guid id) =>
        (await _server.Admin.GetFromJsonAsync<JsonArray>("/api/keys"))!.Single(k => k!["id"]!.GetValue<Guid>() == id)!.AsObject();

    private static async Task<string> CodeAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>();
}
