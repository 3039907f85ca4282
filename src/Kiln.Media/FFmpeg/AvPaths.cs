using System.Globalization;

namespace Kiln.Media.FFmpeg;

/// <summary>How Kiln names files for ffmpeg and stages outputs so that a failed run leaves nothing behind.</summary>
internal static class AvPaths
{
    /// <summary>
    /// An input path for ffmpeg. The <c>file:</c> prefix stops ffmpeg from reading a name such as
    /// <c>http:x.mp4</c> or <c>-y</c> as a protocol or an option.
    /// </summary>
    public static string Input(string path) => "file:" + Path.GetFullPath(path);

    /// <summary>Same reasoning as <see cref="Input"/>, for a single-file output.</summary>
    public static string Output(string path) => "file:" + Path.GetFullPath(path);

    public static long SizeOf(string path) => new FileInfo(path).Length;

    public static string Num(double value) => value.ToString("0.###", CultureInfo.InvariantCulture);

    public static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>Sum of file sizes under a directory, for progress of multi-file outputs where ffmpeg prints N/A.</summary>
    public static long DirectorySize(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return 0;
        }

        long total = 0;
        foreach (var file in new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories))
        {
            try
            {
                total += file.Length;
            }
            catch (FileNotFoundException)
            {
                continue; // ffmpeg renames temporary playlists while we count
            }
        }

        return total;
    }
}

/// <summary>
/// A single output written under a hidden temporary name in the destination directory and renamed into place
/// only when the transform succeeds; disposing without <see cref="Commit"/> deletes the partial file. The rename
/// is atomic because both names are in the same directory.
/// </summary>
internal sealed class StagedFile : IDisposable
{
    private bool _committed;

    public StagedFile(string finalPath)
    {
        FinalPath = Path.GetFullPath(finalPath);
        var directory = Path.GetDirectoryName(FinalPath) ?? throw new ArgumentException("Output path has no directory.", nameof(finalPath));
        Directory.CreateDirectory(directory);
        TempPath = Path.Combine(directory, $".kiln-{Guid.NewGuid():N}.partial");
    }

    public string FinalPath { get; }

    public string TempPath { get; }

    public void Commit()
    {
        File.Move(TempPath, FinalPath, overwrite: true);
        _committed = true;
    }

    public void Dispose()
    {
        if (!_committed)
        {
            File.Delete(TempPath); // no-op when ffmpeg never created it
        }
    }
}

/// <summary>
/// A multi-file output (HLS) written into a hidden staging directory inside the destination and moved into
/// place entry by entry on success; disposing without <see cref="Commit"/> deletes the staging directory, and
/// the destination too when this run created it.
/// </summary>
internal sealed class StagedDirectory : IDisposable
{
    private readonly bool _createdDestination;
    private bool _committed;

    public StagedDirectory(string destination)
    {
        Destination = Path.GetFullPath(destination);
        _createdDestination = !Directory.Exists(Destination);
        Directory.CreateDirectory(Destination);
        StagingPath = Path.Combine(Destination, $".kiln-{Guid.NewGuid():N}.partial");
        Directory.CreateDirectory(StagingPath);
    }

    public string Destination { get; }

    public string StagingPath { get; }

    /// <summary>Moves every staged entry to the destination, replacing entries of the same name from an earlier run.</summary>
    public void Commit()
    {
        foreach (var entry in new DirectoryInfo(StagingPath).EnumerateFileSystemInfos())
        {
            var target = Path.Combine(Destination, entry.Name);
            if (entry is DirectoryInfo dir)
            {
                if (Directory.Exists(target))
                {
                    Directory.Delete(target, recursive: true);
                }

                dir.MoveTo(target);
            }
            else
            {
                File.Move(entry.FullName, target, overwrite: true);
            }
        }

        Directory.Delete(StagingPath, recursive: true);
        _committed = true;
    }

    public void Dispose()
    {
        if (_committed)
        {
            return;
        }

        if (Directory.Exists(StagingPath))
        {
            Directory.Delete(StagingPath, recursive: true);
        }

        if (_createdDestination && Directory.Exists(Destination) && !Directory.EnumerateFileSystemEntries(Destination).Any())
        {
            Directory.Delete(Destination);
        }
    }
}
