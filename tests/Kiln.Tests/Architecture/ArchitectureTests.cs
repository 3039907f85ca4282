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
        ["Security"] = ["Storage", "Tus"],
        ["Storage"] = ["Assets", "Queue"],
        ["Jobs"] = ["Processing", "Queue", "Security"],
        ["Queue"] = ["Jobs", "Observability", "Security", "Storage"],
        ["Processing"] = ["Assets", "Jobs", "Queue", "Storage", "Workers"],
        ["Assets"] = ["Jobs", "Processing", "Queue", "Security", "Storage", "Transcription"],
        ["Pipelines"] = ["Assets", "Enhance", "Jobs", "Observability", "Processing", "Queue"],
        ["Providers"] = ["Processing"],
        ["Enhance"] = ["Processing", "Providers", "Queue"],
        ["Transcription"] = ["Assets", "Jobs", "Pipelines", "Processing", "Providers", "Queue", "Security"],
        ["Fetch"] = ["Assets", "Jobs", "Processing", "Queue", "Security", "Storage"],
        ["Tus"] = ["Assets", "Observability", "Security", "Storage"],
        ["Realtime"] = ["Jobs", "Observability", "Queue", "Security"],
        ["Workers"] = ["Jobs", "Observability", "Processing", "Queue", "Security", "Storage"],
        ["Observability"] = ["Processing", "Realtime", "Security", "Storage", "Workers"],
        ["Operations"] = ["Data", "Queue", "Storage"],
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
            var result = Types.InAssembly(Server).That().ResideInNamespace("Kiln." + folder)
                .ShouldNot().HaveDependencyOn("Kiln." + other).GetResult();
            broken.AddRange((result.FailingTypeNames ?? []).Select(t => $"{t} -> Kiln.{other}"));
        }

        Assert.True(broken.Count == 0, $"Kiln.{folder} uses folders the map does not allow: {string.Join(", ", broken)}");
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

        Assert.True(result.IsSuccessful, string.Join(", ", result.FailingTypeNames ?? []));
    }
}
