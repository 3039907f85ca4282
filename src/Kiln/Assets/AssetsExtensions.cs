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
        return builder;
    }
}
