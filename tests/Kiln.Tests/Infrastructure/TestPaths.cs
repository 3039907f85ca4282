namespace Kiln.Tests.Infrastructure;

/// <summary>Locates the repository and the shared image corpus that sits beside it.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The read-only corpus of real images: <c>../shared/corpus</c> from the repository root.</summary>
    public static string Corpus { get; } = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "corpus"));

    public static string CorpusFile(string name) => Path.Combine(Corpus, name);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Kiln.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Kiln.slnx not found above " + AppContext.BaseDirectory);
    }
}
