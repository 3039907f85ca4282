namespace Kiln.Tests.Media.Images;

/// <summary>A temporary directory per test class, deleted with the class.</summary>
public sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory()
    {
        Path = Directory.CreateTempSubdirectory("kiln-images-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>A fresh subdirectory, so a test can assert on exactly the files it produced.</summary>
    public string NewDirectory(string name)
    {
        var dir = System.IO.Path.Combine(Path, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"scratch directory {Path} not deleted: {e.Message}");
        }
    }
}
