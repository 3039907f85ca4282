namespace Kiln.Storage;

/// <summary>A derivative a job produced. Unique per (asset, type, variant): a rerun replaces it.</summary>
internal sealed record OutputFile(
    string Type,
    string RelativePath,
    string ContentType,
    string Variant = "",
    int? Width = null,
    int? Height = null,
    double? Duration = null);
