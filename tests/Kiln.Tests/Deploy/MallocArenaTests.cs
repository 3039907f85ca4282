using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Deploy;

/// <summary>
/// glibc reads <c>MALLOC_ARENA_MAX</c> only when a process starts (setting it with <c>mallopt</c> from Kiln came too
/// late: the runtime's threads had made their arenas), so every way Kiln is started sets it: two arenas cut the default
/// image pipeline's peak RSS from ~520 to ~355 MiB at the same speed (docs/benchmarks.md, "malloc arenas").
/// </summary>
public sealed class MallocArenaTests
{
    [Theory]
    [InlineData("deploy/Dockerfile", "MALLOC_ARENA_MAX=2 \\")]
    [InlineData("deploy/kiln.service", "MALLOC_ARENA_MAX=2")]
    [InlineData("deploy/systemd/kiln-worker@.service", "MALLOC_ARENA_MAX=2")]
    [InlineData("kiln.sh", "MALLOC_ARENA_MAX=\"${MALLOC_ARENA_MAX:-2}\" dotnet \"$ROOT/src/Kiln/bin/Release/net10.0/kiln.dll\" serve")]
    public void Every_launcher_starts_kiln_with_two_malloc_arenas(string file, string line)
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, file));

        var setting = Assert.Single(lines, l => l.Contains("MALLOC_ARENA_MAX", StringComparison.Ordinal) && !l.TrimStart().StartsWith('#'));
        Assert.Contains(line, setting, StringComparison.Ordinal);
        if (file.EndsWith(".service", StringComparison.Ordinal))
        {
            Assert.StartsWith("Environment=", setting, StringComparison.Ordinal);
        }
    }
}
