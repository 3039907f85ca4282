namespace Kiln.Storage;

internal static class StorageExtensions
{
    /// <summary>The data directory (originals, derivatives, temporary files) and the retention settings (the clean-up itself is Retention/).</summary>
    public static WebApplicationBuilder AddKilnStorage(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RetentionOptions>().BindConfiguration(RetentionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<BlobStore>();
        return builder;
    }
}
