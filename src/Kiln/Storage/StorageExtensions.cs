namespace Kiln.Storage;

internal static class StorageExtensions
{
    /// <summary>The data directory (originals, derivatives, temporary files) and its periodic clean-up.</summary>
    public static WebApplicationBuilder AddKilnStorage(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<BlobStore>();
        services.AddSingleton<CleanupService>();
        services.AddHostedService(sp => sp.GetRequiredService<CleanupService>());
        return builder;
    }
}
