using System.CommandLine;
using Kiln.Core;

namespace Kiln.Security;

/// <summary><c>kiln keys create|list|revoke</c>: manage API keys and worker tokens from the shell.</summary>
internal static class KeysCommand
{
    public static Command Create(IKilnComposition composition)
    {
        var keys = new Command("keys", "Create, list and revoke API keys and worker tokens.");

        var name = new Option<string>("--name") { Description = "A label for the key.", Required = true };
        var role = new Option<string>("--role") { Description = "admin, client or worker.", DefaultValueFactory = _ => Roles.Client };
        role.AcceptOnlyFromAmong(Roles.Admin, Roles.Client, Roles.Worker);
        var create = new Command("create", "Create a key and print its secret once.") { name, role };
        create.SetAction((parse, ct) => WithStoreAsync(composition, async store =>
        {
            var created = await store.CreateAsync(parse.GetValue(name)!, parse.GetValue(role)!, ct);
            Console.WriteLine(created.Secret);
            Console.Error.WriteLine($"created {created.Info.Role} key {created.Info.Id} ({created.Info.Prefix}…) named '{created.Info.Name}'");
            return 0;
        }, ct));

        var list = new Command("list", "List keys (never their secrets).");
        list.SetAction((parse, ct) => WithStoreAsync(composition, async store =>
        {
            foreach (var key in await store.ListAsync(null, ct))
            {
                Console.WriteLine($"{key.Id}  {key.Role,-6}  {key.Prefix,-14}  {(key.RevokedAt is null ? "active " : "revoked")}  {key.Name}");
            }

            return 0;
        }, ct));

        var id = new Argument<string>("id") { Description = "The key's id or printed prefix." };
        var revoke = new Command("revoke", "Revoke a key; it stops working within seconds.") { id };
        revoke.SetAction((parse, ct) => WithStoreAsync(composition, async store =>
        {
            var revoked = await store.RevokeAsync(parse.GetValue(id)!, ct);
            if (revoked is null)
            {
                Console.Error.WriteLine("No active key with that id or prefix.");
                return 1;
            }

            Console.WriteLine($"revoked {revoked.Role} key {revoked.Id} '{revoked.Name}'");
            return 0;
        }, ct));

        keys.Subcommands.Add(create);
        keys.Subcommands.Add(list);
        keys.Subcommands.Add(revoke);
        return keys;
    }

    private static Task<int> WithStoreAsync(IKilnComposition composition, Func<ApiKeyStore, Task<int>> action, CancellationToken ct) => StartupErrors.RunAsync(async () =>
    {
        await using var app = await composition.OpenAsync(["--Kiln:Logging:StandardError=true"], ct);
        return await action(app.Services.GetRequiredService<ApiKeyStore>());
    });
}
