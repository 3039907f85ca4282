using Kiln.Core;
using System.CommandLine;

namespace Kiln.Hosting;

internal static class ServeCommand
{
    public static Command Create()
    {
        var command = new Command("serve", "Run the server: REST API, hub, in-process workers. Other arguments (e.g. --urls) go to ASP.NET Core.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction((parse, ct) => StartupErrors.RunAsync(async () =>
        {
            await using var app = KilnApp.Build([.. parse.UnmatchedTokens]);
            await KilnApp.PrepareAsync(app, ct);
            await app.RunAsync();
            return 0;
        }));
        return command;
    }
}

internal static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Apply database migrations and exit.") { TreatUnmatchedTokensAsErrors = false };
        command.SetAction((parse, ct) => StartupErrors.RunAsync(async () =>
        {
            await using var app = KilnApp.Build([.. parse.UnmatchedTokens]);
            await KilnApp.PrepareAsync(app, ct);
            Console.WriteLine("Migrations applied.");
            return 0;
        }));
        return command;
    }
}
