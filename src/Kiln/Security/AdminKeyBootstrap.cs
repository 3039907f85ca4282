using Microsoft.Extensions.Options;

namespace Kiln.Security;

/// <summary>On first start with no admin key, creates one and prints it once: it is never shown again.</summary>
internal sealed class AdminKeyBootstrap(ApiKeyStore keys, IOptions<SecurityOptions> options, ILogger<AdminKeyBootstrap> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.CreateAdminKeyOnFirstStart || await keys.AnyAdminAsync(cancellationToken))
        {
            return;
        }

        var created = await keys.CreateAsync("admin (first start)", Roles.Admin, cancellationToken);
        logger.LogWarning("Created the first admin API key {Prefix}; it is printed once on standard output", created.Info.Prefix);
        Console.Out.WriteLine();
        Console.Out.WriteLine("  Kiln admin API key (shown once, store it now):");
        Console.Out.WriteLine("  " + created.Secret);
        Console.Out.WriteLine();
        await Console.Out.FlushAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
