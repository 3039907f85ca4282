using System.Security.Claims;
using Kiln.Hosting;
using Kiln.Security;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Net.Http.Headers;

namespace Kiln.Assets;

/// <summary>A downloadable file: a derivative, or an asset's original (addressed by the asset id).</summary>
internal sealed record FileInfoResponse(
    Guid Id,
    Guid AssetId,
    string Type,
    string Variant,
    string ContentType,
    long Size,
    int? Width,
    int? Height,
    double? Duration,
    string FileName,
    string DownloadUrl);

internal static class FileEndpoints
{
    private static readonly FileExtensionContentTypeProvider ContentTypes = CreateContentTypes();

    public static RouteGroupBuilder MapFiles(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/files").WithTags("Files").RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapGet("/{id:guid}", Get);
        group.MapGet("/{id:guid}/download", Download);
        group.MapGet("/{id:guid}/content/{**path}", Content);
        return group;
    }

    private static async Task<Results<Ok<FileInfoResponse>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, AssetStore assets, CancellationToken ct) =>
        await ResolveAsync(id, user, assets, ct) is { } file ? TypedResults.Ok(file.Info) : Problems.NotFound("File");

    private static async Task<Results<PhysicalFileHttpResult, ProblemHttpResult>> Download(
        Guid id, ClaimsPrincipal user, AssetStore assets, BlobStore blobs, CancellationToken ct)
    {
        if (await ResolveAsync(id, user, assets, ct) is not { } file)
        {
            return Problems.NotFound("File");
        }

        var full = blobs.Resolve(file.Path);
        if (!File.Exists(full))
        {
            return Problems.NotFound("File content");
        }

        var modified = File.GetLastWriteTimeUtc(full);
        return TypedResults.PhysicalFile(full, file.Info.ContentType, file.Info.FileName, modified, file.ETag, enableRangeProcessing: true);
    }

    /// <summary>Files beside a derivative (HLS playlists and segments), resolved inside the derivative's directory only.</summary>
    private static async Task<Results<PhysicalFileHttpResult, ProblemHttpResult>> Content(
        Guid id, string path, ClaimsPrincipal user, AssetStore assets, BlobStore blobs, CancellationToken ct)
    {
        if (await ResolveAsync(id, user, assets, ct) is not { IsDerivative: true } file)
        {
            return Problems.NotFound("File");
        }

        var directory = blobs.Resolve(Path.GetDirectoryName(file.Path)!);
        var full = Path.GetFullPath(Path.Combine(directory, path));
        if (!full.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
        {
            return Problems.NotFound("File content");
        }

        var info = new FileInfo(full);
        var etag = new EntityTagHeaderValue($"\"{id:N}-{info.Length:x}-{info.LastWriteTimeUtc.Ticks:x}\"");
        return TypedResults.PhysicalFile(full, ContentTypeOf(full), null, info.LastWriteTimeUtc, etag, enableRangeProcessing: true);
    }

    private static async Task<ResolvedFile?> ResolveAsync(Guid id, ClaimsPrincipal user, AssetStore assets, CancellationToken ct)
    {
        if (await assets.GetDerivativeAsync(id, ct) is { } found && (user.IsAdmin() || found.OwnerId == user.KeyId()))
        {
            var d = found.Derivative;
            var name = $"{d.AssetId:N}-{d.Type.ToLowerInvariant()}{(d.Variant.Length > 0 ? "-" + d.Variant : "")}{Path.GetExtension(d.Path)}";
            return new ResolvedFile(
                new FileInfoResponse(d.Id, d.AssetId, d.Type, d.Variant, d.ContentType, d.Size, d.Width, d.Height, d.Duration, name, $"/api/files/{d.Id}/download"),
                d.Path,
                new EntityTagHeaderValue($"\"{d.Id:N}-{d.Size:x}\""),
                IsDerivative: true);
        }

        if (await assets.GetAsync(id, user.OwnerScope(), ct) is { } asset)
        {
            var width = asset.Metadata["width"]?.GetValue<int?>();
            var height = asset.Metadata["height"]?.GetValue<int?>();
            var duration = asset.Metadata["duration"]?.GetValue<double?>();
            return new ResolvedFile(
                new FileInfoResponse(asset.Id, asset.Id, "ORIGINAL", "", asset.ContentType, asset.Size, width, height, duration, asset.OriginalName, $"/api/files/{asset.Id}/download"),
                asset.Path,
                new EntityTagHeaderValue($"\"{asset.Sha256 ?? asset.Id.ToString("N") + "-" + asset.Size.ToString("x", System.Globalization.CultureInfo.InvariantCulture)}\""),
                IsDerivative: false);
        }

        return null;
    }

    private static string ContentTypeOf(string path) =>
        ContentTypes.TryGetContentType(path, out var type) ? type : "application/octet-stream";

    private static FileExtensionContentTypeProvider CreateContentTypes()
    {
        var provider = new FileExtensionContentTypeProvider();
        provider.Mappings[".m3u8"] = "application/vnd.apple.mpegurl";
        provider.Mappings[".ts"] = "video/mp2t";
        provider.Mappings[".m4s"] = "video/iso.segment";
        provider.Mappings[".mp4"] = "video/mp4";
        provider.Mappings[".json"] = "application/json";
        provider.Mappings[".svg"] = "image/svg+xml";
        provider.Mappings[".vtt"] = "text/vtt";
        return provider;
    }

    private sealed record ResolvedFile(FileInfoResponse Info, string Path, EntityTagHeaderValue ETag, bool IsDerivative);
}
