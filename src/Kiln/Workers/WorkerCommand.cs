using System.CommandLine;
using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Security;

namespace Kiln.Workers;

/// <summary>
/// <c>kiln worker --server URL --token T</c> runs jobs for a server without database credentials or its data
/// directory; <c>kiln workers token create|list|revoke</c> manages worker tokens from the server's shell.
/// </summary>
internal static class WorkerCommand
{
    public const string TokenVariable = "KILN_WORKER_TOKEN";

    public static Command Create(IKilnComposition composition)
    {
        var server = new Option<string>("--server") { Description = "The server's base URL, e.g. https://kiln.example:8080.", Required = true };
        var token = new Option<string?>("--token") { Description = $"A worker token (kiln_wt_…). Defaults to ${TokenVariable}, which keeps it out of the process list." };
        var name = new Option<string>("--name") { Description = "This worker's name as the server shows it.", DefaultValueFactory = _ => SafeName(Environment.MachineName) };
        var slots = new Option<int>("--slots") { Description = "Jobs run at once.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var kinds = new Option<string[]>("--kinds") { Description = "Serve only these job kinds, comma-separated or repeated (default: every kind this build can run)." };
        var workDir = new Option<string?>("--work-dir") { Description = "Scratch space for inputs and outputs (default: a private temporary directory)." };
        var shutdown = new Option<double>("--shutdown-timeout") { Description = "Seconds running jobs may take to finish on stop before they are given back.", DefaultValueFactory = _ => 30 };
        var command = new Command("worker", "Run jobs for a Kiln server over its worker WebSocket. Other arguments (--Section:Key=value) configure the handlers.")
        {
            server, token, name, slots, kinds, workDir, shutdown,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction(async (parse, ct) =>
        {
            var secret = parse.GetValue(token) ?? Environment.GetEnvironmentVariable(TokenVariable);
            if (!Uri.TryCreate(parse.GetValue(server), UriKind.Absolute, out var serverUri) || serverUri.Scheme is not ("http" or "https"))
            {
                Console.Error.WriteLine("--server must be an absolute http:// or https:// URL.");
                return 2;
            }

            if (string.IsNullOrWhiteSpace(secret))
            {
                Console.Error.WriteLine($"A worker token is required: --token or ${TokenVariable}.");
                return 2;
            }

            var (slotCount, timeout) = (parse.GetValue(slots), parse.GetValue(shutdown));
            if (slotCount < 1 || timeout < 0)
            {
                Console.Error.WriteLine("--slots must be at least 1 and --shutdown-timeout not negative.");
                return 2;
            }

            return await RunAsync(
                composition, [.. parse.UnmatchedTokens], serverUri, secret, parse.GetValue(name)!, slotCount,
                parse.GetValue(kinds)?.SelectMany(k => k.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToArray(), parse.GetValue(workDir), TimeSpan.FromSeconds(timeout), ct);
        });
        return command;
    }

    /// <summary><c>kiln workers token create|list|revoke</c>.</summary>
    public static Command CreateAdmin(IKilnComposition composition)
    {
        var name = new Option<string>("--name") { Description = "A label for the token.", Required = true };
        var create = new Command("create", "Create a worker token and print it once.") { name };
        create.SetAction((parse, ct) => WithKeysAsync(composition, parse, async keys =>
        {
            var created = await keys.CreateAsync(parse.GetValue(name)!, Roles.Worker, ct);
            Console.WriteLine(created.Secret);
            Console.Error.WriteLine($"created worker token {created.Info.Id} ({created.Info.Prefix}…) named '{created.Info.Name}'");
            return 0;
        }, ct));

        var list = new Command("list", "List worker tokens (never their secrets).");
        list.SetAction((parse, ct) => WithKeysAsync(composition, parse, async keys =>
        {
            foreach (var key in await keys.ListAsync(Roles.Worker, ct))
            {
                Console.WriteLine($"{key.Id}  {key.Prefix,-14}  {(key.RevokedAt is null ? "active " : "revoked")}  {key.Name}");
            }

            return 0;
        }, ct));

        var id = new Argument<string>("id") { Description = "The token's id or printed prefix." };
        var revoke = new Command("revoke", "Revoke a worker token; its workers are disconnected within seconds.") { id };
        revoke.SetAction((parse, ct) => WithKeysAsync(composition, parse, async keys =>
        {
            var wanted = parse.GetValue(id)!;
            var match = (await keys.ListAsync(Roles.Worker, ct)).FirstOrDefault(k => k.RevokedAt is null && (k.Id.ToString() == wanted || k.Prefix == wanted));
            if (match is null || await keys.RevokeAsync(match.Id.ToString(), ct) is null)
            {
                Console.Error.WriteLine("No active worker token with that id or prefix.");
                return 1;
            }

            Console.WriteLine($"revoked worker token {match.Id} '{match.Name}'");
            return 0;
        }, ct));

        var tokenCommand = new Command("token", "Create, list and revoke worker tokens.");
        foreach (var sub in new[] { create, list, revoke })
        {
            sub.TreatUnmatchedTokensAsErrors = false;
            tokenCommand.Subcommands.Add(sub);
        }

        var workers = new Command("workers", "Manage remote workers.");
        workers.Subcommands.Add(tokenCommand);
        return workers;
    }

    private static async Task<int> RunAsync(
        IKilnComposition composition, string[] configArgs, Uri server, string token, string name, int slots, string[]? kinds, string? workDir, TimeSpan shutdownTimeout, CancellationToken ct)
    {
        await using var host = BuildHost(composition, configArgs);
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Kiln.Worker");
        try
        {
            // The handlers' settings are checked before connecting, as the server checks its own at start.
            host.Services.GetService<Microsoft.Extensions.Options.IStartupValidator>()?.Validate();
        }
        catch (Microsoft.Extensions.Options.OptionsValidationException e)
        {
            logger.LogError("Invalid configuration: {Message}", e.Message);
            return 2;
        }

        OrphanSweep.Run(logger);
        var handlers = host.Services.GetServices<IJobHandler>().ToDictionary(h => h.Kind, StringComparer.Ordinal);
        if (kinds is { Length: > 0 })
        {
            var missing = kinds.Where(k => !handlers.ContainsKey(k)).ToArray();
            if (missing.Length > 0)
            {
                logger.LogError("This build has no handler for {Kinds}; it can run {Available}", string.Join(", ", missing), string.Join(", ", handlers.Keys));
                return 2;
            }

            handlers = handlers.Where(h => kinds.Contains(h.Key)).ToDictionary(StringComparer.Ordinal);
        }

        var ownWorkDir = workDir is null;
        var root = Path.GetFullPath(workDir ?? Path.Combine(Path.GetTempPath(), $"kiln-worker-{Environment.ProcessId}"));
        Directory.CreateDirectory(root);

        // SIGTERM and Ctrl+C start the drain; the process ends once it is done.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        try
        {
            var worker = new RemoteWorker(new RemoteWorkerSettings(server, token, name, slots, root, shutdownTimeout), handlers, logger);
            return await worker.RunAsync(stop.Token);
        }
        finally
        {
            if (ownWorkDir)
            {
                try
                {
                    Directory.Delete(root, recursive: true);
                }
                catch (IOException e)
                {
                    logger.LogWarning(e, "Could not remove the work directory {Path}", root);
                }
            }
        }

        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
    }

    /// <summary>The same handlers, options and logging as the server, without its database, web server or data directory.</summary>
    private static WebApplication BuildHost(IKilnComposition composition, string[] configArgs)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = configArgs, ContentRootPath = AppContext.BaseDirectory });
        builder.AddKilnObservability();
        composition.AddJobKinds(builder);
        return builder.Build();
    }

    private static async Task<int> WithKeysAsync(IKilnComposition composition, ParseResult parse, Func<ApiKeyStore, Task<int>> action, CancellationToken ct)
    {
        await using var app = await composition.OpenAsync([.. parse.UnmatchedTokens], ct);
        return await action(app.Services.GetRequiredService<ApiKeyStore>());
    }

    private static string SafeName(string name)
    {
        var safe = new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]);
        return safe.Length is > 0 and <= 64 ? safe : "worker";
    }
}
