using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Security;

/// <summary>
/// On first start with no admin key, creates one and hands it to a person: a banner on standard error (never inside
/// the JSON log stream on standard output) and the file <c>DATA/keys/admin-key.txt</c>, mode 0600, for when nobody
/// watched the terminal (a service, a container). The log only says where it is.
/// </summary>
internal sealed class AdminKeyBootstrap(ApiKeyStore keys, BlobStore blobs, IOptions<SecurityOptions> options, ILogger<AdminKeyBootstrap> logger) : IHostedService
{
    public const string FileName = "admin-key.txt";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.CreateAdminKeyOnFirstStart || await keys.AnyAdminAsync(cancellationToken))
        {
            return;
        }

        var created = await keys.CreateAsync("admin (first start)", Roles.Admin, cancellationToken);
        var path = Path.Combine(blobs.Root, "keys", FileName);
        WritePrivate(path, created.Secret + "\n");
        logger.LogWarning("Created the first admin API key {Prefix}; it is printed once on standard error and kept in {Path} (mode 0600): store it and delete the file",
            created.Info.Prefix, path);
        var banner = string.Join('\n',
            "",
            "  ================================================================",
            "  Kiln admin API key (shown once, store it now):",
            "  " + created.Secret,
            "  also written to " + path + " (mode 0600); delete it once stored",
            "  ================================================================",
            "");
        await Console.Error.WriteLineAsync(banner.AsMemory(), cancellationToken);
        await Console.Error.FlushAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Created with 0600 from the first byte, so the secret is never readable by others, even briefly.</summary>
    private static void WritePrivate(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path); // a left-over file would keep its old mode
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var writer = new StreamWriter(new FileStream(path, options));
        writer.Write(text);
    }
}
