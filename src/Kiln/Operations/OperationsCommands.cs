using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Queue;
using Kiln.Retention;
using Kiln.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Kiln.Operations;

/// <summary><c>kiln health</c> and <c>kiln cleanup</c>: what a script, a monitor or a cron job runs.</summary>
internal static class OperationsCommands
{
    /// <summary>Exit codes of <c>kiln health</c>: 0 healthy or degraded, 1 unhealthy, 3 the server cannot be reached.</summary>
    public const int Unhealthy = 1;
    public const int Unreachable = 3;

    public static Command Health(IKilnComposition composition)
    {
        var url = new Option<string?>("--url")
        {
            Description = "Ask a running server (its /health/ready, or /health/live with --live) instead of checking the pieces from here.",
        };
        var live = new Option<bool>("--live") { Description = "With --url: only whether the process serves requests (/health/live)." };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the answer.", DefaultValueFactory = _ => 10 };
        var command = new Command("health", "Exit 0 when Kiln is healthy or degraded, 1 when unhealthy, 3 when the server cannot be reached.")
        {
            url, live, timeout,
        };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) =>
        {
            var seconds = parse.GetValue(timeout);
            if (parse.GetValue(url) is not { } given)
            {
                return StartupErrors.RunAsync(() => CheckHereAsync(composition, [.. parse.UnmatchedTokens], seconds, ct));
            }

            return Uri.TryCreate(given, UriKind.Absolute, out var server) && server.Scheme is "http" or "https"
                ? AskServerAsync(server, parse.GetValue(live), seconds, ct)
                : Task.FromResult(BadUrl(given));
        });
        return command;
    }

    public static Command Cleanup(IKilnComposition composition)
    {
        var command = new Command("cleanup", "Run retention now: expired assets and their files, finished jobs past their TTL or each queue's keep counts, crash leftovers.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction((parse, ct) => StartupErrors.RunAsync(async () =>
        {
            await using var app = await composition.OpenAsync([.. parse.UnmatchedTokens, "--Kiln:Logging:StandardError=true"], ct);
            var cleanup = app.Services.GetRequiredService<CleanupService>();
            var assets = await cleanup.RemoveExpiredAssetsAsync(ct);
            var jobs = await cleanup.RemoveOldJobsAsync(ct);
            var pruned = await app.Services.GetRequiredService<QueueMaintenance>().PruneAsync(ct);
            var orphans = await cleanup.RemoveOrphansAsync(ct);
            Console.WriteLine($"expired assets deleted: {assets}; jobs past their TTL deleted: {jobs}; jobs over queue retention deleted: {pruned}; leftover temporary files deleted: {orphans}");
            return 0;
        }));
        return command;
    }

    private static int BadUrl(string given)
    {
        Console.Error.WriteLine($"kiln health: --url {given} is not an http(s) address, e.g. http://127.0.0.1:8080");
        return StartupErrors.ConfigurationExitCode;
    }

    private static async Task<int> AskServerAsync(Uri server, bool live, double seconds, CancellationToken ct)
    {
        using var http = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromSeconds(seconds) };
        try
        {
            using var response = await http.GetAsync(live ? "/health/live" : "/health/ready", ct);
            Console.WriteLine(await response.Content.ReadAsStringAsync(ct));
            return response.IsSuccessStatusCode ? 0 : Unhealthy;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"kiln health: {server} cannot be reached: {e.Message}");
            return Unreachable;
        }
    }

    /// <summary>Runs the readiness checks in this process: the database, the data directory's disk, ffmpeg and libvips.</summary>
    private static async Task<int> CheckHereAsync(IKilnComposition composition, string[] args, double seconds, CancellationToken ct)
    {
        await using var app = composition.Build([.. args, "--Kiln:Logging:StandardError=true"]);
        app.Services.GetService<IStartupValidator>()?.Validate();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        // Worker slots belong to a serving process; here they would only report this process's idle ones.
        var report = await app.Services.GetRequiredService<HealthCheckService>()
            .CheckHealthAsync(c => c.Tags.Contains("ready") && c.Name != "workers", timeout.Token);
        var body = new JsonObject { ["status"] = report.Status.ToString() };
        var checks = new JsonObject();
        foreach (var (name, entry) in report.Entries)
        {
            checks[name] = new JsonObject { ["status"] = entry.Status.ToString(), ["description"] = entry.Description };
        }

        body["checks"] = checks;
        Console.WriteLine(body.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return report.Status == HealthStatus.Unhealthy ? Unhealthy : 0;
    }
}
