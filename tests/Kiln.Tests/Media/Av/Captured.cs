using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Av;

/// <summary>Tool output captured from this machine's ffmpeg 5.1 (Debian 12), read from the source tree.</summary>
internal static class Captured
{
    public static string Read(string name) =>
        File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "tests", "Kiln.Tests", "Media", "Av", "Captured", name));
}
