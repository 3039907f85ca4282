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

    /// <summary>The same table as docs/architecture.md, "Folders and what they may use".</summary>
    private static readonly Dictionary<string, string[]> Allowed = new(StringComparer.Ordinal)
    {
        ["Data"] = [],
        ["Hosting"] = ["*"],
        ["Security"] = ["Hosting", "Storage", "Tus"],
        ["Storage"] = ["Assets", "Hosting", "Queue"],
        ["Jobs"] = ["Hosting", "Processing", "Queue", "Security"],
        ["Queue"] = ["Hosting", "Jobs", "Observability", "Security", "Storage"],
        ["Processing"] = ["Assets", "Hosting", "Jobs", "Queue", "Storage", "Workers"],
        ["Assets"] = ["Hosting", "Jobs", "Processing", "Queue", "Security", "Storage", "Transcription"],
        ["Pipelines"] = ["Assets", "Enhance", "Observability", "Processing", "Queue"],
        ["Providers"] = ["Processing"],
        ["Enhance"] = ["Processing", "Providers", "Queue"],
        ["Transcription"] = ["Assets", "Hosting", "Jobs", "Pipelines", "Processing", "Providers", "Queue", "Security"],
        ["Fetch"] = ["Assets", "Hosting", "Jobs", "Processing", "Queue", "Security", "Storage"],
        ["Tus"] = ["Assets", "Hosting", "Observability", "Security", "Storage"],
        ["Realtime"] = ["Hosting", "Jobs", "Observability", "Queue", "Security"],
        ["Workers"] = ["Hosting", "Jobs", "Observability", "Processing", "Queue", "Security", "Storage"],
        ["Observability"] = ["Hosting", "Processing", "Realtime", "Security", "Storage", "Workers"],
        ["Operations"] = ["Data", "Hosting", "Queue", "Storage"],
        ["Web"] = ["Hosting"],
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
        foreach (var other in Folders.Where(f => f != folder && !allowed.Contains(f)))
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
