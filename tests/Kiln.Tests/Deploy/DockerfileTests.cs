using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Kiln.Tests.Deploy;

/// <summary>
/// The image's runtime stage installs every program and native library Kiln uses, and the image runs as a non-root
/// user. The list is derived, not kept by hand: programs are the defaults of the <c>…Path</c> settings of Kiln's
/// options classes, native libraries are the P/Invoke targets; each is mapped to its Debian package with dpkg on this
/// machine (where kiln.sh installed them), and that package must be in the dependency closure of what the Dockerfile
/// installs.
/// </summary>
public sealed partial class DockerfileTests
{
    [Fact]
    public async Task The_runtime_stage_installs_every_binary_kiln_calls()
    {
        var dockerfile = Stages(await File.ReadAllTextAsync(Tool.Deploy("Dockerfile")));
        var installed = dockerfile["runtime"].Installs;
        Assert.NotEmpty(installed);

        var closure = await DependencyClosureAsync(installed);
        var needed = Programs().Concat(NativeLibraries()).Distinct(StringComparer.Ordinal).ToList();
        Assert.Contains("ffmpeg", needed);
        Assert.Contains("ffprobe", needed);
        Assert.Contains("pg_dump", needed);
        Assert.Contains("libvips.so.42", needed);

        var missing = new List<string>();
        foreach (var item in needed)
        {
            var package = await OwningPackageAsync(item);
            if (!closure.Contains(package))
            {
                missing.Add($"{item} (Debian package {package})");
            }
        }

        Assert.True(missing.Count == 0, "deploy/Dockerfile's runtime stage does not install: " + string.Join(", ", missing));
    }

    [Fact]
    public async Task The_server_and_worker_targets_run_as_a_non_root_user_and_the_server_checks_health_live()
    {
        var stages = Stages(await File.ReadAllTextAsync(Tool.Deploy("Dockerfile")));
        foreach (var target in new[] { "server", "worker" })
        {
            var user = EffectiveUser(stages, target);
            Assert.False(user is null or "root" or "0" || user.StartsWith("0:", StringComparison.Ordinal) || user.StartsWith("root:", StringComparison.Ordinal),
                $"target {target} runs as {user ?? "root (no USER)"}");
        }

        Assert.Equal("server", stages.Keys.Last());
        Assert.Matches(@"HEALTHCHECK .*kiln\.dll"", ""health"".*""--live""", string.Join('\n', stages["server"].Lines));
        Assert.StartsWith("debian:bookworm", stages["runtime"].From, StringComparison.Ordinal);
    }

    /// <summary>Bare command names from the defaults of every options class's <c>…Path</c> settings.</summary>
    private static IEnumerable<string> Programs()
    {
        foreach (var type in KilnTypes().Where(t => t.Name.EndsWith("Options", StringComparison.Ordinal) && !t.IsAbstract && t.GetConstructor(Type.EmptyTypes) is not null))
        {
            var instance = Activator.CreateInstance(type);
            foreach (var property in type.GetProperties().Where(p => p.PropertyType == typeof(string) && p.Name.EndsWith("Path", StringComparison.Ordinal)))
            {
                if (property.GetValue(instance) is string value && value.Length > 0 && !value.Contains('/', StringComparison.Ordinal) && !value.Contains('.', StringComparison.Ordinal))
                {
                    yield return value;
                }
            }
        }
    }

    private static IEnumerable<string> NativeLibraries() =>
        KilnTypes().SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<DllImportAttribute>()?.Value)
            // Versioned shared objects (libvips.so.42, libglib-2.0.so.0); bare names like "libc" are the C library
            // and the runtime's own, present in any base image.
            .Where(v => v is not null && v.Contains(".so.", StringComparison.Ordinal))
            .Select(v => v!);

    private static IEnumerable<Type> KilnTypes() =>
        new[] { typeof(Kiln.Hosting.KilnApp).Assembly, typeof(Kiln.Media.MediaException).Assembly }.SelectMany(a => a.GetTypes());

    /// <summary>The package that owns a program on PATH or a shared library, per dpkg.</summary>
    private static async Task<string> OwningPackageAsync(string item)
    {
        var path = item.StartsWith("lib", StringComparison.Ordinal) && item.Contains(".so", StringComparison.Ordinal)
            ? "*/" + item
            : Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, item)).FirstOrDefault(File.Exists)
                ?? throw new InvalidOperationException($"{item} is not on PATH here; ./kiln.sh installs it");
        var result = await Tool.RunAsync("dpkg", ["-S", path]);
        Assert.True(result.ExitCode == 0, $"dpkg -S {path}: {result.Stderr}");
        return result.Stdout.Split('\n')[0].Split(':')[0].Trim();
    }

    private static async Task<HashSet<string>> DependencyClosureAsync(IEnumerable<string> packages)
    {
        var result = await Tool.RunAsync("apt-cache", [
            "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", .. packages]);
        Assert.True(result.ExitCode == 0, result.Stderr);
        return result.Stdout.Split('\n').Where(l => l.Length > 0 && !char.IsWhiteSpace(l[0]) && !l.StartsWith('<'))
            .Select(l => l.Split(':')[0].Trim()).ToHashSet(StringComparer.Ordinal);
    }

    private static string? EffectiveUser(Dictionary<string, Stage> stages, string name)
    {
        for (var stage = stages[name]; ; stage = stages[stage.From])
        {
            if (stage.User is not null)
            {
                return stage.User;
            }

            if (!stages.ContainsKey(stage.From))
            {
                return null;
            }
        }
    }

    private sealed record Stage(string From, List<string> Lines)
    {
        public string? User => Lines.Select(l => UserLine().Match(l)).LastOrDefault(m => m.Success)?.Groups[1].Value;

        /// <summary>Packages named by <c>apt-get install</c> in this stage.</summary>
        public List<string> Installs => [.. Lines.SelectMany(l => InstallCommand().Matches(l))
            .SelectMany(m => m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(w => !w.StartsWith('-') && w != "\\")];
    }

    /// <summary>Stages by name (or index), with continuation lines joined.</summary>
    private static Dictionary<string, Stage> Stages(string dockerfile)
    {
        var stages = new Dictionary<string, Stage>(StringComparer.Ordinal);
        Stage? current = null;
        foreach (var line in Regex.Replace(dockerfile, @"\\\n", " ").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            var from = FromLine().Match(line);
            if (from.Success)
            {
                current = new Stage(from.Groups[1].Value, []);
                stages[from.Groups[2].Success ? from.Groups[2].Value : stages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture)] = current;
                continue;
            }

            current?.Lines.Add(line);
        }

        return stages;
    }

    [GeneratedRegex(@"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", RegexOptions.IgnoreCase)]
    private static partial Regex FromLine();

    [GeneratedRegex(@"^USER\s+(\S+)", RegexOptions.IgnoreCase)]
    private static partial Regex UserLine();

    [GeneratedRegex(@"apt-get install ([^&;]*)")]
    private static partial Regex InstallCommand();
}
