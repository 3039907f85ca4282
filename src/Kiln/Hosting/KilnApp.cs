using System.Text.Json.Serialization;
using Kiln.Assets;
using Kiln.Data;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Pipelines;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Security;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace Kiln.Hosting;

/// <summary>Builds the server: each feature adds its services and maps its endpoints; Program only picks the command.</summary>
internal static class KilnApp
{
    /// <summary>
    /// Creates the application. <paramref name="configure"/> lets tests and benchmarks add settings or services
    /// (extra job kinds) before it is built.
    /// </summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Services.AddOptions<KilnOptions>().BindConfiguration(KilnOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<UploadOptions>().BindConfiguration(UploadOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton(sp => new NodeIdentity(sp.GetRequiredService<IOptions<KilnOptions>>().Value.NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}"));
        builder.Services.AddSingleton<BlobStore>();
        builder.Services.AddSingleton<AssetStore>();
        builder.Services.AddSingleton<BatchStore>();
        builder.Services.AddSingleton<AssetIngest>();
        builder.Services.AddHostedService<CleanupService>();
        builder.Services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(System.Text.Json.JsonNamingPolicy.CamelCase));
        });
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = c =>
        {
            // Framework-made problems (bad JSON, unknown route) get a stable code too.
            if (!c.ProblemDetails.Extensions.ContainsKey("errorCode"))
            {
                c.ProblemDetails.Extensions["errorCode"] = c.ProblemDetails.Status switch
                {
                    400 => "bad_request",
                    404 => "not_found",
                    405 => "method_not_allowed",
                    413 => "too_large",
                    415 => "unsupported_media_type",
                    _ => "error",
                };
            }
        });
        builder.Services.AddOpenApi();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(
            (builder.Configuration.GetValue<double?>("Kiln:Workers:ShutdownTimeoutSeconds") ?? 30) + 15));

        builder.AddKilnData();
        builder.AddKilnObservability();
        builder.AddKilnSecurity();
        builder.AddKilnQueue();
        builder.AddKilnProcessing();
        builder.AddKilnAvPipeline();
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseKilnHttpMetrics();
        app.UseKilnSecurity();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapKilnObservability();
        app.MapAssets();
        app.MapBatches();
        app.MapFiles();
        app.MapJobs();
        app.MapQueues();
        return app;
    }

    /// <summary>Applies migrations, wires start-up singletons, then serves until stopped.</summary>
    public static async Task PrepareAsync(WebApplication app, CancellationToken cancellationToken)
    {
        await app.Services.GetRequiredService<Migrator>().MigrateAsync(cancellationToken);

        // Subscribes to cross-node stop signals; must exist before the first NOTIFY arrives.
        app.Services.GetRequiredService<JobStopper>();
    }
}
