using System.Text.Json.Serialization;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Security;

namespace Kiln.Realtime;

internal static class RealtimeExtensions
{
    public static WebApplicationBuilder AddKilnRealtime(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RealtimeOptions>().BindConfiguration(RealtimeOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSignalR(o => o.EnableDetailedErrors = false)
            .AddJsonProtocol(o => o.PayloadSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull);
        services.AddSingleton<WatchRegistry>();
        services.AddSingleton<HubEventDispatcher>();
        services.AddSingleton<IJobEventListener>(sp => sp.GetRequiredService<HubEventDispatcher>());
        services.AddHostedService(sp => sp.GetRequiredService<HubEventDispatcher>());
        services.AddSingleton<EventRelay>();
        services.AddSingleton<IJobEventListener>(sp => sp.GetRequiredService<EventRelay>());
        services.AddHostedService(sp => sp.GetRequiredService<EventRelay>());
        services.AddHostedService<ShutdownNotifier>();
        services.AddSingleton<HubKeyWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<HubKeyWatcher>());
        services.AddSingleton<IHubConnectionCount>(sp => sp.GetRequiredService<HubKeyWatcher>());
        return builder;
    }

    /// <summary>Maps <c>/hubs/jobs</c>; browsers pass their key as <c>?access_token=</c>.</summary>
    public static IEndpointConventionBuilder MapKilnRealtime(this IEndpointRouteBuilder routes) =>
        routes.MapHub<JobsHub>(JobsHub.Path).RequireAuthorization(SecurityExtensions.ClientPolicy);
}
