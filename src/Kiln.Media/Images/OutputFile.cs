namespace Kiln.Media.Images;

/// <summary>
/// An output written under a temporary name and renamed into place only when complete, so a failed or
/// cancelled transform never leaves a partial file where a finished one is expected.
/// </summary>
internal sealed class OutputFile : IDisposable
{
    private bool _committed;

    public OutputFile(string finalPath)
    {
        FinalPath = Path.GetFullPath(finalPath);
        var directory = Path.GetDirectoryName(FinalPath)!;
        Directory.CreateDirectory(directory);
        PartialPath = Path.Combine(directory, "." + Path.GetFileName(FinalPath) + "." + Guid.NewGuid().ToString("N")[..8] + ".partial");
    }

    public string FinalPath { get; }

    /// <summary>Where the encoder writes; libvips picks the saver by operation, so the suffix does not matter.</summary>
    public string PartialPath { get; }

    public long PartialLength => new FileInfo(PartialPath).Length;

    /// <summary>Moves the finished file into place and returns its size.</summary>
    public long Commit()
    {
        File.Move(PartialPath, FinalPath, overwrite: true);
        _committed = true;
        return new FileInfo(FinalPath).Length;
    }

    /// <summary>Puts a copy of another file in place instead of what was encoded.</summary>
    public long CommitCopyOf(string source)
    {
        File.Copy(source, PartialPath, overwrite: true);
        return Commit();
    }

    public void Dispose()
    {
        if (!_committed)
        {
            File.Delete(PartialPath);
        }
    }
}
