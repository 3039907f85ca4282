using System.Globalization;
using System.Security.Claims;
using Kiln.Core;
using Kiln.Security;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.Options;
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

internal sealed record SignedUrlResponse(string Url, string Query, DateTimeOffset ExpiresAt);

internal static class FileEndpoints
{
    private static readonly FileExtensionContentTypeProvider ContentTypes = CreateContentTypes();

    public static RouteGroupBuilder MapFiles(this IEndpointRouteBuilder routes)
    {
        // Reading bytes also accepts a signed URL (browsers cannot send the key); everything else needs a key.
        var group = routes.MapGroup("/api/files").WithTags("Files").ProducesCommonProblems();
        group.MapGet("/{id:guid}", Get).RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapPost("/{id:guid}/signed-url", Sign).RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapMethods("/{id:guid}/download", [HttpMethods.Get, HttpMethods.Head], Download).RequireAuthorization(SecurityExtensions.FileReadPolicy)
            .ProducesProblem(StatusCodes.Status416RangeNotSatisfiable);
        group.MapMethods("/{id:guid}/content/{**path}", [HttpMethods.Get, HttpMethods.Head], Content).RequireAuthorization(SecurityExtensions.FileReadPolicy)
            .ProducesProblem(StatusCodes.Status416RangeNotSatisfiable);
        return group;
    }

    private static async Task<Results<Ok<FileInfoResponse>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, AssetStore assets, CancellationToken ct) =>
        await ResolveAsync(id, user, assets, ct) is { } file ? TypedResults.Ok(file.Info) : Problems.NotFound("File");

    /// <summary>A URL a browser can load without the key, valid for <paramref name="seconds"/> (default and cap are configured).</summary>
    private static async Task<Results<Ok<SignedUrlResponse>, ProblemHttpResult>> Sign(
        Guid id, ClaimsPrincipal user, AssetStore assets, UrlSigner signer, IOptions<SecurityOptions> options, CancellationToken ct, int? seconds = null)
    {
        var limits = options.Value;
        if (seconds is < 1 || seconds > limits.SignedUrlMaxSeconds)
        {
            return Problems.BadRequest("files.bad_lifetime", $"seconds must be between 1 and {limits.SignedUrlMaxSeconds}.");
        }

        if (await ResolveAsync(id, user, assets, ct) is null)
        {
            return Problems.NotFound("File");
        }

        var signed = signer.Sign(id, TimeSpan.FromSeconds(seconds ?? limits.SignedUrlSeconds));
        return TypedResults.Ok(new SignedUrlResponse(signed.Url, signed.Query, signed.ExpiresAt));
    }

    /// <summary>
    /// The file's bytes with Range (one or several), ETag/If-None-Match and Content-Disposition: attachment by
    /// default, <c>?disposition=inline</c> for display in the browser.
    /// </summary>
    private static async Task<Results<PhysicalFileHttpResult, ByteRangesResult, ContentHttpResult, ProblemHttpResult>> Download(
        Guid id, HttpContext http, ClaimsPrincipal user, AssetStore assets, BlobStore blobs, IHlsCaptions captions, CancellationToken ct, string? disposition = null)
    {
        if (disposition is not (null or "attachment" or "inline"))
        {
            return Problems.BadRequest("files.bad_disposition", "disposition must be attachment or inline.");
        }

        if (await ResolveAsync(id, user, assets, ct) is not { } file)
        {
            return Problems.NotFound("File");
        }

        var full = blobs.Resolve(file.Path);
        if (!File.Exists(full))
        {
            return Problems.NotFound("File content");
        }

        if (file.IsDerivative && full.EndsWith(HlsPlaylist.Extension, StringComparison.Ordinal))
        {
            var text = await File.ReadAllTextAsync(full, ct);
            if (file.Info.Type == "HLS")
            {
                text = await captions.AddToMasterAsync(file.Info.AssetId, text, ct);
            }

            return Playlist(http, user, id, text, "");
        }

        var header = new ContentDispositionHeaderValue(disposition ?? "attachment");
        header.SetHttpFileName(file.Info.FileName);
        return Serve(http, full, file.Info.ContentType, file.ETag, header.ToString());
    }

    /// <summary>Files beside a derivative (HLS playlists and segments), resolved inside the derivative's directory only.</summary>
    private static async Task<Results<PhysicalFileHttpResult, ByteRangesResult, ContentHttpResult, ProblemHttpResult>> Content(
        Guid id, string path, HttpContext http, ClaimsPrincipal user, AssetStore assets, BlobStore blobs, IHlsCaptions captions, CancellationToken ct)
    {
        if (await ResolveAsync(id, user, assets, ct) is not { IsDerivative: true } file)
        {
            return Problems.NotFound("File");
        }

        // The captions rendition is made from the active transcript (IHlsCaptions), not read from disk.
        if (file.Info.Type == "HLS" && captions.IsCaptionPath(path))
        {
            if (await captions.GetAsync(file.Info.AssetId, path, file.Info.Duration, ct) is not { } caption)
            {
                return Problems.NotFound("Transcript");
            }

            return caption.IsPlaylist
                ? Playlist(http, user, id, caption.Text, "subtitles")
                : TypedResults.Text(caption.Text, caption.ContentType);
        }

        var directory = blobs.Resolve(Path.GetDirectoryName(file.Path)!);
        var full = Path.GetFullPath(Path.Combine(directory, path));
        if (!full.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal) || !File.Exists(full))
        {
            return Problems.NotFound("File content");
        }

        if (full.EndsWith(HlsPlaylist.Extension, StringComparison.Ordinal))
        {
            var relative = Path.GetRelativePath(directory, Path.GetDirectoryName(full)!).Replace('\\', '/');
            return Playlist(http, user, id, await File.ReadAllTextAsync(full, ct), relative == "." ? "" : relative);
        }

        var info = new FileInfo(full);
        var etag = new EntityTagHeaderValue($"\"{id:N}-{info.Length:x}-{info.LastWriteTimeUtc.Ticks:x}\"");
        return Serve(http, full, ContentTypeOf(full), etag, null);
    }

    /// <summary>
    /// An HLS playlist with its references made absolute and, for a signed URL, signed (<see cref="HlsPlaylist"/>).
    /// Playlists are a few kilobytes, so they are served whole and not cached.
    /// </summary>
    private static ContentHttpResult Playlist(HttpContext http, ClaimsPrincipal user, Guid id, string text, string directory)
    {
        var signedQuery = user.SignedFileId() is null
            ? null
            : $"expires={Uri.EscapeDataString(http.Request.Query["expires"].ToString())}&sig={Uri.EscapeDataString(http.Request.Query["sig"].ToString())}";
        http.Response.Headers.CacheControl = "private, no-cache";
        return TypedResults.Text(HlsPlaylist.Rewrite(text, id, directory, signedQuery), HlsPlaylist.ContentType);
    }

    private static Results<PhysicalFileHttpResult, ByteRangesResult, ContentHttpResult, ProblemHttpResult> Serve(
        HttpContext http, string full, string contentType, EntityTagHeaderValue etag, string? contentDisposition)
    {
        var info = new FileInfo(full);
        var modified = new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero);
        switch (ByteRanges.Plan(http.Request, info.Length, etag))
        {
            case RangePlan.Unsatisfiable:
                http.Response.Headers.ContentRange = $"bytes */{info.Length.ToString(CultureInfo.InvariantCulture)}";
                return Problems.Result(StatusCodes.Status416RangeNotSatisfiable, "range_not_satisfiable", $"No requested range overlaps the file's {info.Length} bytes.");
            case RangePlan.Serve serve:
                return new ByteRangesResult(full, contentType, info.Length, serve.Ranges, etag, modified, contentDisposition);
            default:
                if (contentDisposition is not null)
                {
                    http.Response.Headers.ContentDisposition = contentDisposition;
                }

                return TypedResults.PhysicalFile(full, contentType, null, modified, etag, enableRangeProcessing: true);
        }
    }

    private static async Task<ResolvedFile?> ResolveAsync(Guid id, ClaimsPrincipal user, AssetStore assets, CancellationToken ct)
    {
        // A signed URL opens the one file it was signed for, whoever owns it; a key sees its owner's files (admin: all).
        var signed = user.SignedFileId();
        if (signed is not null && signed != id)
        {
            return null;
        }

        var scope = signed is null ? user.OwnerScope() : null;
        if (await assets.GetDerivativeAsync(id, ct) is { } found && (scope is null || found.OwnerId == scope))
        {
            var d = found.Derivative;
            var name = $"{d.AssetId:N}-{d.Type.ToLowerInvariant()}{(d.Variant.Length > 0 ? "-" + d.Variant : "")}{Path.GetExtension(d.Path)}";
            return new ResolvedFile(
                new FileInfoResponse(d.Id, d.AssetId, d.Type, d.Variant, d.ContentType, d.Size, d.Width, d.Height, d.Duration, name, $"/api/files/{d.Id}/download"),
                d.Path,
                new EntityTagHeaderValue($"\"{d.Id:N}-{d.Size:x}\""),
                IsDerivative: true);
        }

        if (await assets.GetAsync(id, scope, ct) is { } asset)
        {
            var width = asset.Metadata["width"]?.GetValue<int?>();
            var height = asset.Metadata["height"]?.GetValue<int?>();
            var duration = asset.Metadata["duration"]?.GetValue<double?>();
            return new ResolvedFile(
                new FileInfoResponse(asset.Id, asset.Id, "ORIGINAL", "", asset.ContentType, asset.Size, width, height, duration, asset.OriginalName, $"/api/files/{asset.Id}/download"),
                asset.Path,
                new EntityTagHeaderValue($"\"{asset.Id:N}-{asset.Size.ToString("x", CultureInfo.InvariantCulture)}\""),
                IsDerivative: false);
        }

        return null;
    }

    private static string ContentTypeOf(string path) =>
        ContentTypes.TryGetContentType(path, out var type) ? type : "application/octet-stream";

    private static FileExtensionContentTypeProvider CreateContentTypes()
    {
        var provider = new FileExtensionContentTypeProvider();
        provider.Mappings[HlsPlaylist.Extension] = HlsPlaylist.ContentType;
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
