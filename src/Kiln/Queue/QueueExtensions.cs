using Kiln.Jobs;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kiln.Queue;

internal static class QueueExtensions
{
    public static WebApplicationBuilder AddKilnQueue(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<QueueNotifier>();
        services.AddHostedService(sp => sp.GetRequiredService<QueueNotifier>());
        services.AddSingleton<LeaseRegistry>();
        services.AddSingleton<JobStopper>();
        services.AddSingleton<IJobStopper>(sp => sp.GetRequiredService<JobStopper>());
        services.AddSingleton<CompletionWriter>();
        services.AddSingleton<JobLeaser>();
        services.AddSingleton<IJobDispatcher, JobDispatcher>();
        services.AddSingleton<IdleLoops>();
        services.AddSingleton<ILeaseAtEnqueue, LeaseAtEnqueue>();
        services.AddSingleton<QueueMaintenance>();
        services.AddHostedService(sp => sp.GetRequiredService<QueueMaintenance>());
        services.AddSingleton<QueueStore>();
        return builder;
    }
}
