using Kiln.Core;

namespace Kiln.Assets;

internal static class AssetsExtensions
{
    /// <summary>Assets, batches and the ingest that turns uploaded files into assets with their pipeline's jobs.</summary>
    public static WebApplicationBuilder AddKilnAssets(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<UploadOptions>().BindConfiguration(UploadOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<AssetStore>();
        services.AddSingleton<BatchStore>();
        services.AddSingleton<AssetIngest>();
        services.AddSingleton<PipelinePlanner>();
        return builder;
    }

    /// <summary>Adds a job every new asset of the step's media kind gets by default (registered by the feature that handles the kind).</summary>
    public static IServiceCollection AddPipelineStep(this IServiceCollection services, PipelineStep step) => services.AddSingleton(step);
}
