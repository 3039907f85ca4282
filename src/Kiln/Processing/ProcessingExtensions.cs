using Kiln.Jobs;
using Kiln.Observability;

namespace Kiln.Processing;

internal static class ProcessingExtensions
{
    /// <summary>Registers a job kind the server can enqueue, and its handler when one runs in this process.</summary>
    public static IServiceCollection AddJobKind<THandler>(this IServiceCollection services, JobKindInfo kind)
        where THandler : class, IJobHandler
    {
        services.AddSingleton(kind);
        if (kind.MediaKinds is null)
        {
            services.AddSingleton<IJobHandler, THandler>();
        }
        else
        {
            services.AddSingleton<THandler>();
            services.AddSingleton<IJobHandler>(sp => new MediaKindGuard(sp.GetRequiredService<THandler>(), kind));
        }

        return services;
    }

    public static WebApplicationBuilder AddKilnProcessing(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<WorkerOptions>().BindConfiguration(WorkerOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<JobKindCatalog>();
        builder.Services.AddSingleton<InProcessWorkers>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<InProcessWorkers>());
        builder.Services.AddSingleton<IInProcessWorkerCount>(sp => sp.GetRequiredService<InProcessWorkers>());
        builder.Services.AddHostedService<ShutdownJobReport>();
        builder.Services.AddJobKind<ProbeHandler>(new JobKindInfo(Kinds.Probe, Kinds.DefaultQueue, Priority: 0, Params: JobParams.None));
        return builder;
    }
}
