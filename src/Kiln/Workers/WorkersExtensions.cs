using System.Net.WebSockets;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Queue;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Workers;

/// <summary>Makes sessions for accepted worker connections.</summary>
internal sealed class WorkerSessionFactory(
    IJobDispatcher dispatcher,
    JobKindCatalog catalog,
    JobSignals signals,
    QueueWakeups wakeups,
    BlobStore blobs,
    JobTokens tokens,
    WorkerStore store,
    KilnMetrics metrics,
    NodeIdentity node,
    IOptions<RemoteWorkerOptions> options,
    IOptions<QueueOptions> queueOptions,
    ILogger<WorkerSession> logger)
{
    private readonly WorkerSessionServices _services = new(
        dispatcher, catalog, signals, wakeups, blobs, tokens, store, metrics, options.Value, queueOptions.Value, logger);

    public WorkerSession Create(WebSocket socket, Guid keyId, string? address) =>
        new(new MessageSocket(socket, options.Value.MaxMessageBytes), _services, keyId, node.Name, address);
}

internal static class WorkersExtensions
{
    public static WebApplicationBuilder AddKilnRemoteWorkers(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RemoteWorkerOptions>().BindConfiguration(RemoteWorkerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<WorkerStore>();
        services.AddSingleton<JobTokens>();
        services.AddSingleton<WorkerSessionFactory>();
        services.AddSingleton<RemoteWorkerRegistry>();
        services.AddHostedService(sp => sp.GetRequiredService<RemoteWorkerRegistry>());
        services.AddSingleton<IRemoteWorkerCount>(sp => sp.GetRequiredService<RemoteWorkerRegistry>());
        return builder;
    }
}
