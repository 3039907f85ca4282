using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kiln.Jobs;

internal static class JobsExtensions
{
    /// <summary>The job rows and their API: reading, commanding and announcing jobs (the queue leases them).</summary>
    public static WebApplicationBuilder AddKilnJobs(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<QueueOptions>().BindConfiguration(QueueOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        // Time-based transitions (JobStates) read the clock from here, so tests can drive them with a fake one.
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<QueueWakeups>();
        services.AddSingleton<JobSignals>();
        services.AddSingleton<IJobEventSink, JobEventBus>();
        services.AddSingleton<JobReader>();
        services.AddSingleton<JobStore>();
        services.AddSingleton<JobCommands>();
        return builder;
    }
}
