using System.Reflection;
using NetArchTest.Rules;

namespace Kiln.Tests.Architecture;

/// <summary>
/// Keeps docs/architecture.md true: each feature folder of src/Kiln may use only the folders the map lists for it,
/// and Kiln.Media knows nothing of HTTP, the database or the server. A new dependency fails here until the map (and
/// this table, which mirrors it) says it is intended.
/// </summary>
public sealed class ArchitectureTests
{
    private static readonly Assembly Server = typeof(Kiln.Hosting.KilnApp).Assembly;

    /// <summary>
    /// The same table as docs/architecture.md, "Folders and what they may use". Every folder may use Core (the small
    /// shared kernel), which itself uses no other folder; only Hosting, the composition root, may use everything.
    /// </summary>
    private static readonly Dictionary<string, string[]> Allowed = new(StringComparer.Ordinal)
    {
        ["Core"] = [],
        ["Data"] = [],
        ["Hosting"] = ["*"],
        ["Storage"] = [],
        ["Security"] = ["Storage"],
        ["Jobs"] = ["Security"],
        ["Assets"] = ["Jobs", "Security", "Storage"],
        ["Retention"] = ["Assets", "Storage"],
        ["Observability"] = ["Security", "Storage"],
        ["Queue"] = ["Jobs", "Observability", "Security", "Storage"],
        ["Processing"] = ["Jobs", "Observability", "Queue", "Storage"],
        ["Providers"] = ["Processing"],
        ["Enhance"] = ["Processing", "Providers", "Queue", "Storage"],
        ["Pipelines"] = ["Assets", "Enhance", "Jobs", "Observability", "Processing", "Queue", "Storage"],
        ["Transcription"] = ["Assets", "Jobs", "Pipelines", "Processing", "Providers", "Queue", "Security", "Storage"],
        ["Fetch"] = ["Assets", "Jobs", "Processing", "Queue", "Security", "Storage"],
        ["Tus"] = ["Assets", "Observability", "Security", "Storage"],
        ["Realtime"] = ["Jobs", "Observability", "Queue", "Security"],
        ["Workers"] = ["Jobs", "Observability", "Processing", "Queue", "Security", "Storage"],
        ["Operations"] = ["Data", "Queue", "Retention", "Storage"],
        ["Web"] = [],
    };

    private static readonly string[] Folders = [.. Allowed.Keys];

    public static TheoryData<string, string[]> Map => new(Allowed.Select(pair => (pair.Key, pair.Value)));

    [Theory]
    [MemberData(nameof(Map))]
    public void A_folder_uses_only_the_folders_the_map_allows(string folder, string[] allowed)
    {
        if (allowed is ["*"])
        {
            return; // the composition root wires everything
        }

        var broken = new List<string>();
        foreach (var other in Folders.Where(f => f != folder && f != "Core" && !allowed.Contains(f)))
        {
            // Kiln.Workers.Testing belongs to Workers; the pattern keeps Kiln.Workers from matching Kiln.WorkersX.
            var result = Types.InAssembly(Server).That().ResideInNamespaceMatching($@"^Kiln\.{folder}(\..+)?$")
                .ShouldNot().HaveDependencyOnAny("Kiln." + other).GetResult();
            broken.AddRange((result.FailingTypes ?? []).Select(t => $"{t.FullName} -> Kiln.{other} ({t.Explanation})"));
        }

        Assert.True(broken.Count == 0, $"Kiln.{folder} uses folders the map does not allow: {string.Join(", ", broken)}");
    }

    /// <summary>
    /// Dependencies point one way: no folder may use, directly or through others, a folder that uses it. Together with
    /// the test above this keeps the code free of two-way pairs and longer loops, not only the table.
    /// </summary>
    [Fact]
    public void The_map_has_no_loops()
    {
        var loops = new List<string>();
        foreach (var start in Folders.Where(f => Allowed[f] is not ["*"]))
        {
            var path = new Stack<string>();
            Walk(start);

            void Walk(string folder)
            {
                path.Push(folder);
                foreach (var next in Allowed[folder])
                {
                    if (next == start)
                    {
                        loops.Add(string.Join(" -> ", path.Reverse().Append(start)));
                    }
                    else if (!path.Contains(next))
                    {
                        Walk(next);
                    }
                }

                path.Pop();
            }
        }

        Assert.True(loops.Count == 0, $"Folders that depend on each other: {string.Join("; ", loops)}");
    }

    [Fact]
    public void Every_folder_of_the_server_is_on_the_map()
    {
        var namespaces = Server.GetTypes()
            .Select(t => t.Namespace)
            .Where(n => n is not null && n.StartsWith("Kiln.", StringComparison.Ordinal))
            .Select(n => n!.Split('.')[1])
            .Distinct()
            .Order(StringComparer.Ordinal);

        Assert.Empty(namespaces.Except(Folders));
    }

    [Fact]
    public void The_media_library_knows_nothing_of_http_the_database_or_the_server()
    {
        var result = Types.InAssembly(typeof(Kiln.Media.MediaException).Assembly)
            .ShouldNot().HaveDependencyOnAny("Microsoft.AspNetCore", "Npgsql", "Kiln.Hosting", "Kiln.Queue", "Kiln.Jobs")
            .GetResult();

        Assert.True(result.IsSuccessful, string.Join(", ", (result.FailingTypes ?? []).Select(t => $"{t.FullName} ({t.Explanation})")));
    }
}
