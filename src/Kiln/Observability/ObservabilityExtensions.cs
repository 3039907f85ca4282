using System.Diagnostics;
using System.Text.Json;
using Kiln.Security;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Kiln.Observability;

internal static class ObservabilityExtensions
{
    public static WebApplicationBuilder AddKilnObservability(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<KilnMetrics>();
        var format = builder.Configuration["Kiln:Logging:Format"] ?? "json";

        // Commands whose standard output is their result (kiln keys create) send every log line to stderr.
        var toStandardError = builder.Configuration.GetValue<bool>("Kiln:Logging:StandardError");
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = toStandardError ? LogLevel.Trace : LogLevel.None);
        builder.Logging.ClearProviders();
        if (format.Equals("json", StringComparison.OrdinalIgnoreCase))
        {
            builder.Logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            builder.Logging.AddSimpleConsole(o => o.IncludeScopes = true);
        }

        builder.Services.AddSingleton<ToolsHealthCheck>();
        builder.Services.AddHealthChecks()
            .AddCheck<DatabaseHealthCheck>("database", tags: ["ready"])
            .AddCheck<DiskSpaceHealthCheck>("disk", tags: ["ready"])
            .AddCheck<ToolsHealthCheck>("tools", tags: ["ready"])
            .AddCheck<WorkersHealthCheck>("workers", tags: ["ready"]);
        return builder;
    }

    /// <summary>Counts every request by route pattern (not raw path, which would explode the label set).</summary>
    public static WebApplication UseKilnHttpMetrics(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<KilnMetrics>();
        app.Use(async (context, next) =>
        {
            var start = Stopwatch.GetTimestamp();
            try
            {
                await next(context);
            }
            finally
            {
                var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
                metrics.HttpRequest(context.Request.Method, route, context.Response.StatusCode, Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        });
        return app;
    }

    public static WebApplication MapKilnObservability(this WebApplication app)
    {
        // Probes and scrapes are exempt from rate limits: an overloaded server must still say how it is.
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).WithTags("Health").DisableRateLimiting();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions
        {
            Predicate = c => c.Tags.Contains("ready"),
            ResponseWriter = WriteHealthAsync,
        }).WithTags("Health").DisableRateLimiting();
        var scrape = app.MapMetrics("/metrics", app.Services.GetRequiredService<KilnMetrics>().Registry)
            .WithTags("Health").ExcludeFromDescription().DisableRateLimiting();
        if (app.Services.GetRequiredService<IOptions<SecurityOptions>>().Value.MetricsRequireAdminKey)
        {
            scrape.RequireAuthorization(SecurityExtensions.AdminPolicy);
        }

        ServerGauges.Register(app.Services);
        return app;
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        var body = new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(
                e => e.Key,
                e => new { status = e.Value.Status.ToString(), description = e.Value.Description, data = e.Value.Data }),
        };
        return context.Response.WriteAsync(JsonSerializer.Serialize(body), context.RequestAborted);
    }
}

/// <summary>
/// Who processes jobs through this node: in-process slots and the remote workers connected here. Degraded (still 200)
/// when in-process workers are off and no remote worker is connected: jobs queue up until one connects, possibly to
/// another node. Both counts are optional (enumerables, empty when the host lacks the feature: `kiln worker` has no remote workers).
/// </summary>
internal sealed class WorkersHealthCheck(IEnumerable<IInProcessWorkerCount> inProcess, IEnumerable<IRemoteWorkerCount> remoteWorkers) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var remote = remoteWorkers.Sum(r => r.ConnectedWorkers);
        var enabled = inProcess.Any(w => w.InProcessEnabled);
        var running = inProcess.Sum(w => w.InProcessRunning);
        var data = new Dictionary<string, object>
        {
            ["inProcess"] = enabled,
            ["inProcessRunning"] = running,
            ["remoteWorkers"] = remote,
        };
        var result = enabled
            ? HealthCheckResult.Healthy($"in-process workers running {running} jobs; {remote} remote workers connected", data)
            : remote > 0
                ? HealthCheckResult.Healthy($"in-process workers disabled; {remote} remote workers connected", data)
                : HealthCheckResult.Degraded("in-process workers disabled and no remote worker connected to this node; jobs wait", data: data);
        return Task.FromResult(result);
    }
}
