using System.Text.Json.Serialization;
using Kiln.Assets;
using Kiln.Core;
using Kiln.Data;
using Kiln.Enhance;
using Kiln.Fetch;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Pipelines;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Realtime;
using Kiln.Retention;
using Kiln.Security;
using Kiln.Storage;
using Kiln.Transcription;
using Kiln.Tus;
using Kiln.Web;
using Kiln.Workers;
using Kiln.Workers.Testing;
using Microsoft.AspNetCore.Connections;
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
        builder.Services.AddSingleton<IMemoryPoolFactory<byte>, KestrelBlockPoolFactory>();
        builder.Services.AddOptions<KilnOptions>().BindConfiguration(KilnOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton(sp => new NodeIdentity(sp.GetRequiredService<IOptions<KilnOptions>>().Value.NodeName ?? $"{Environment.MachineName}:{Environment.ProcessId}"));
        builder.Services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(System.Text.Json.JsonNamingPolicy.CamelCase));
        });
        builder.Services.AddKilnProblemDetails();
        builder.Services.AddExceptionHandler<KilnExceptionHandler>();
        builder.Services.AddOpenApi(o => o.AddApiKeyScheme());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(
            (builder.Configuration.GetValue<double?>("Kiln:Workers:ShutdownTimeoutSeconds") ?? 30) + 15));

        SettingsValidation.ValidateConnectionString(builder.Configuration);
        builder.AddKilnData();
        builder.AddKilnObservability();
        builder.AddKilnCompression();
        builder.AddKilnSecurity();
        builder.AddKilnStorage();
        builder.AddKilnAssets();
        builder.AddKilnRetention();
        builder.AddKilnJobs();
        builder.AddKilnQueue();
        builder.AddKilnJobKinds();
        builder.AddKilnRealtime();
        builder.AddKilnRemoteWorkers();
        builder.AddKilnTus();
        builder.AddKilnWeb();
        builder.AddKilnFetch();
        configure?.Invoke(builder);
        SettingsValidation.NameSettingsInMessages(builder.Services);

        var app = builder.Build();
        app.UseKilnTusMethodOverride();
        app.UseRouting();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseKilnHttpMetrics();
        app.UseKilnCompression();
        app.UseKilnSecurity();
        app.UseWebSockets();
        app.UseKilnWeb();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapKilnObservability();
        app.MapAssets();
        app.MapTranscripts();
        app.MapBatches();
        app.MapFiles();
        app.MapJobs();
        app.MapQueues();
        app.MapKilnRealtime();
        app.MapWorkers();
        app.MapKeys();
        app.MapTus();
        app.MapDownloads();
        return app;
    }

    /// <summary>
    /// Job kinds and their handlers. <c>kiln worker</c> calls this too, so a remote worker runs exactly the handlers
    /// the server would: a feature with a job kind registers it here, not in <see cref="Build"/>.
    /// </summary>
    public static WebApplicationBuilder AddKilnJobKinds(this WebApplicationBuilder builder)
    {
        builder.AddKilnProcessing();
        builder.AddKilnImagePipeline();
        builder.AddKilnAvPipeline();
        builder.AddKilnTranscription();
        builder.AddKilnEnhanceProviders();
        builder.AddKilnTestKinds();
        return builder;
    }

    /// <summary>Applies migrations, wires start-up singletons, then serves until stopped.</summary>
    public static async Task PrepareAsync(WebApplication app, CancellationToken cancellationToken)
    {
        // Settings first: a bad value should be reported as such, not as whatever it breaks on the way.
        app.Services.GetService<IStartupValidator>()?.Validate();
        try
        {
            await app.Services.GetRequiredService<Migrator>().MigrateAsync(cancellationToken);
        }
        catch (Npgsql.NpgsqlException e)
        {
            var csb = new Npgsql.NpgsqlConnectionStringBuilder(app.Configuration.GetConnectionString("Kiln"));
            throw new KilnStartupException(
                $"PostgreSQL at ConnectionStrings:Kiln (host {csb.Host}, port {csb.Port}, database {csb.Database}) cannot be used: {e.Message}", e);
        }

        // Every known queue exists from the start, so an admin can see, pause or limit it before its first job.
        var queueDefaults = app.Services.GetRequiredService<IOptions<QueueOptions>>().Value;
        foreach (var queue in app.Services.GetRequiredService<JobKindCatalog>().All.Select(k => k.Queue).Distinct(StringComparer.Ordinal))
        {
            await app.Services.GetRequiredService<QueueStore>().EnsureAsync(queue, queueDefaults.KeepCompleted, queueDefaults.KeepFailed, cancellationToken);
        }

        OrphanSweep.Run(app.Logger);

        // Subscribes to cross-node stop signals; must exist before the first NOTIFY arrives.
        app.Services.GetRequiredService<JobStopper>();
    }
}
