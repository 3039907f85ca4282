namespace Kiln.Web;

/// <summary>Section <c>Kiln:Web</c>: the dashboard's static files.</summary>
internal sealed class WebOptions
{
    public const string Section = "Kiln:Web";

    /// <summary>Serve the dashboard at <c>/</c>. Off: only the API, hub and operations endpoints answer. Kiln__Web__Enabled.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// The built page (Vite's output: index.html and assets/). Empty: <c>wwwroot</c> under the content root, which is
    /// where the build copies it next to the executable. Kiln__Web__Root.
    /// </summary>
    public string? Root { get; set; }

    public string ResolveRoot(string contentRoot) =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(Root) ? Path.Combine(contentRoot, "wwwroot") : Root);
}
