using Kiln.Core;
using Microsoft.Extensions.Options;

namespace Kiln.Storage;

/// <summary>
/// The data directory's layout. Everything the database points at is a path relative to the data directory, so the
/// directory can move. Layout: <c>originals/{asset}/</c>, <c>derivatives/{asset}/{job}-{lease}/</c>,
/// <c>tmp/uploads/</c> (streams in progress), <c>tmp/tus/</c> (resumable uploads), <c>tmp/jobs/{job}/</c> (work and staged outputs, kept across a pause).
/// Temporary files live on the same file system as their destination, so publishing is one atomic rename.
/// </summary>
internal sealed class BlobStore
{
    private readonly long _minFreeBytes;

    public BlobStore(IOptions<KilnOptions> options)
    {
        _minFreeBytes = options.Value.MinFreeDiskBytes;
        Root = Path.GetFullPath(options.Value.DataDirectory);
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(UploadsTemp);
        Directory.CreateDirectory(JobsTemp);
        Directory.CreateDirectory(TusTemp);
    }

    public string Root { get; }

    /// <summary>Kiln:MinFreeDiskBytes: below this the readiness check fails and uploads are refused with 507.</summary>
    public long MinFreeBytes => _minFreeBytes;

    /// <summary>Bytes free for Kiln on the data directory's file system.</summary>
    public long FreeBytes() => new DriveInfo(Root).AvailableFreeSpace;

    public string UploadsTemp => Path.Combine(Root, "tmp", "uploads");

    public string JobsTemp => Path.Combine(Root, "tmp", "jobs");

    /// <summary>Resumable (tus) uploads in progress, one file each; they outlive restarts and expire on their own schedule.</summary>
    public string TusTemp => Path.Combine(Root, "tmp", "tus");

    public string TusUploadPath(Guid uploadId) => Path.Combine(TusTemp, uploadId.ToString("N") + ".part");

    /// <summary>The file whose exclusive lock serialises writers of one resumable upload (not the data file itself).</summary>
    public string TusLockPath(Guid uploadId) => Path.Combine(TusTemp, uploadId.ToString("N") + ".lock");

    public static string OriginalRelativePath(Guid assetId) => Path.Combine("originals", assetId.ToString("N"), "original");

    public static string DerivativeRelativeDirectory(Guid assetId, Guid jobId, Guid leaseId) =>
        Path.Combine("derivatives", assetId.ToString("N"), $"{jobId:N}-{leaseId.ToString("N")[..8]}");

    public string NewUploadTempPath() => Path.Combine(UploadsTemp, Guid.NewGuid().ToString("N") + ".part");

    /// <summary>Turns a stored relative path into an absolute one, refusing anything that leaves the data directory.</summary>
    public string Resolve(string relativePath)
    {
        var full = Path.GetFullPath(Path.Combine(Root, relativePath));
        if (!full.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Path '{relativePath}' leaves the data directory.");
        }

        return full;
    }

    /// <summary>Moves a finished upload into its final place with one rename.</summary>
    public string PublishOriginal(string tempPath, Guid assetId)
    {
        var relative = OriginalRelativePath(assetId);
        var target = Resolve(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Move(tempPath, target, overwrite: false);
        return relative;
    }

    /// <summary>Moves a job's staged output directory to its derivative directory with one rename.</summary>
    public string PublishDerivatives(string stagingDirectory, Guid assetId, Guid jobId, Guid leaseId)
    {
        var relative = DerivativeRelativeDirectory(assetId, jobId, leaseId);
        var target = Resolve(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }

        Directory.Move(stagingDirectory, target);
        return relative;
    }

    /// <summary>Deletes a file or directory under the data directory, and its parent when that is left empty.</summary>
    public void DeleteQuietly(string relativePath, ILogger logger)
    {
        try
        {
            var full = Resolve(relativePath);
            if (Directory.Exists(full))
            {
                Directory.Delete(full, recursive: true);
            }
            else if (File.Exists(full))
            {
                File.Delete(full);
            }

            var parent = Path.GetDirectoryName(full);
            if (parent is not null && parent != Root && Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any())
            {
                Directory.Delete(parent);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            logger.LogWarning(e, "Could not delete {Path}", relativePath);
        }
    }
}
