namespace Kiln.Retention;

internal static class RetentionExtensions
{
    /// <summary>
    /// The periodic clean-up: what a crash left in tmp/, expired assets, finished jobs past their retention. Its own
    /// folder because it reaches across assets, jobs and files; none of them depends on it.
    /// </summary>
    public static WebApplicationBuilder AddKilnRetention(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<CleanupService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CleanupService>());
        return builder;
    }
}
