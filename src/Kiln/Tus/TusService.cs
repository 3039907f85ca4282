using Kiln.Assets;
using Kiln.Core;
using Kiln.Observability;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Kiln.Tus;

/// <summary>Where an upload stands: bytes received so far, and the asset once finished.</summary>
internal sealed record TusStatus(TusUpload Upload, long Offset);

/// <summary>
/// tus 1.0 resumable uploads (core, creation, termination, expiration). Bytes are appended to
/// <c>tmp/tus/{id}.part</c> as they arrive, so a dropped connection keeps what came; the file's length is the offset.
/// Writing holds an exclusive lock on a sibling <c>{id}.lock</c> file (an advisory lock on Unix, honoured by every node
/// sharing the data directory), so two PATCHes can never interleave. The lock is not on the data file itself: that file
/// becomes the asset's original while the lock is still held, and a job reading it must not meet the lock. The last byte turns the file into an asset through the same
/// detection, settings check and ingest as <c>POST /api/uploads</c>.
/// </summary>
internal sealed class TusService(
    TusStore store,
    BlobStore blobs,
    AssetIngest ingest,
    PipelinePlanner planner,
    KilnMetrics metrics,
    IOptions<TusOptions> options,
    IOptions<UploadOptions> uploadOptions,
    IHostApplicationLifetime lifetime,
    TimeProvider time)
{
    private const int BufferSize = 128 * 1024;

    public long MaxSize => uploadOptions.Value.MaxFileBytes;

    private TimeSpan Expiration => TimeSpan.FromHours(options.Value.ExpirationHours);

    public async Task<TusUpload> CreateAsync(Guid ownerId, long? length, string? metadataHeader, CancellationToken ct)
    {
        if (length is null)
        {
            throw new TusRejectedException(StatusCodes.Status400BadRequest, "tus.length_required", "Upload-Length is required (deferred lengths are not supported).");
        }

        if (length == 0)
        {
            throw new TusRejectedException(StatusCodes.Status400BadRequest, "tus.empty_file", "Upload-Length is 0; an empty file cannot become an asset.");
        }

        if (length > MaxSize)
        {
            throw new TusRejectedException(StatusCodes.Status413PayloadTooLarge, "tus.too_large", $"Upload-Length is larger than the limit of {MaxSize} bytes (Kiln:Uploads:MaxFileBytes).");
        }

        var metadata = ReadMetadata(metadataHeader);
        var now = time.GetUtcNow();
        var upload = new TusUpload(
            Guid.CreateVersion7(), ownerId, length.Value, metadata.FileName, metadata.Category, metadata.Tags, metadata.Settings,
            now, now + Expiration, null, null);

        // The file exists from creation, so HEAD and PATCH see offset 0 rather than a missing file.
        await File.WriteAllBytesAsync(blobs.TusUploadPath(upload.Id), [], ct);
        if (!await store.TryCreateAsync(upload, options.Value.MaxPartialUploadsPerKey, now, ct))
        {
            File.Delete(blobs.TusUploadPath(upload.Id));
            throw new TusRejectedException(StatusCodes.Status429TooManyRequests, "tus.too_many_uploads",
                $"This key already has {options.Value.MaxPartialUploadsPerKey} unfinished uploads (Kiln:Tus:MaxPartialUploadsPerKey); finish or terminate one first.");
        }

        return upload;
    }

    public async Task<TusStatus> StatusAsync(Guid id, Guid ownerId, CancellationToken ct)
    {
        var upload = await FindAsync(id, ownerId, ct);
        return new TusStatus(upload, upload.IsComplete ? upload.Length : CurrentLength(id));
    }

    /// <summary>
    /// Appends the request body at <paramref name="offset"/>. Returns the new status; when the body ends early
    /// (the client went away) the bytes that arrived stay and the client resumes from them.
    /// </summary>
    public async Task<TusStatus> AppendAsync(Guid id, Guid ownerId, long offset, HttpContext http, CancellationToken ct)
    {
        var upload = await FindAsync(id, ownerId, ct);
        if (upload.IsComplete)
        {
            return offset == upload.Length && http.Request.ContentLength is null or 0
                ? new TusStatus(upload, upload.Length)
                : throw OffsetMismatch(offset, upload.Length);
        }

        var remaining = upload.Length - offset;
        if (http.Request.ContentLength > remaining)
        {
            throw TooLarge(upload);
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // The upload's own length bounds the body; the JSON limit the security middleware set does not apply.
            bodyLimit.MaxRequestBodySize = null;
        }

        await store.ExtendAsync(id, time.GetUtcNow() + Expiration, ct);
        var path = blobs.TusUploadPath(id);
        FileStream writeLock;
        try
        {
            writeLock = new FileStream(blobs.TusLockPath(id), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1);
        }
        catch (IOException)
        {
            throw new TusRejectedException(StatusCodes.Status423Locked, "tus.locked", "Another request is writing to this upload; retry once it ends.");
        }

        await using (writeLock)
        await using (var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1, FileOptions.Asynchronous))
        {
            if (file.Length != offset)
            {
                throw OffsetMismatch(offset, file.Length);
            }

            file.Position = offset;
            var received = await CopyBodyAsync(http.Request.Body, file, remaining, upload, ct);
            metrics.Increment("kiln_tus_bytes_written_total", "Bytes appended to resumable uploads.", "", received);
            var newOffset = offset + received;
            if (newOffset < upload.Length)
            {
                return new TusStatus(upload, newOffset);
            }

            // Finished. The lock is still held, so no other request can finish it too; the client may go away now
            // without stopping the ingest, which would otherwise leave the bytes neither an upload nor an asset.
            file.Position = 0;
            var sniffed = await UploadReader.SniffAsync(file, lifetime.ApplicationStopping);
            if (planner.Validate(upload.Settings) is { } error)
            {
                throw new TusRejectedException(StatusCodes.Status400BadRequest, error.Code("tus"), error.Message);
            }

            var form = new UploadForm([new UploadedFile(path, upload.FileName, upload.Length, sniffed)], upload.Settings, upload.Category, [.. upload.Tags]);
            var now = time.GetUtcNow();
            Guid assetId = default;
            await ingest.IngestAsync(form, upload.OwnerId, batchId: null, async (conn, tx, assets, token) =>
            {
                assetId = assets[0];
                await TusStore.MarkCompletedAsync(conn, tx, id, assetId, now, now + Expiration, token);
            }, lifetime.ApplicationStopping);
            File.Delete(blobs.TusLockPath(id));
            return new TusStatus(upload with { CompletedAt = now, AssetId = assetId }, upload.Length);
        }
    }

    /// <summary>Termination: the record and the partial file go; a finished upload's asset stays (delete it as an asset).</summary>
    public async Task TerminateAsync(Guid id, Guid ownerId, CancellationToken ct)
    {
        if (!await store.DeleteAsync(id, ownerId, ct))
        {
            throw NotFound();
        }

        File.Delete(blobs.TusUploadPath(id));
        File.Delete(blobs.TusLockPath(id));
    }

    /// <summary>Copies at most <paramref name="remaining"/> bytes; a body longer than that undoes this request's bytes.</summary>
    private async Task<long> CopyBodyAsync(Stream body, FileStream file, long remaining, TusUpload upload, CancellationToken ct)
    {
        var start = file.Position;
        var buffer = new byte[BufferSize];
        long received = 0;
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer, ct)) > 0)
            {
                if (received + read > remaining)
                {
                    file.SetLength(start);
                    throw TooLarge(upload);
                }

                // Bytes already read are written even if the client has gone: they are the ones it will not resend.
                await file.WriteAsync(buffer.AsMemory(0, read), lifetime.ApplicationStopping);
                received += read;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or BadHttpRequestException && !lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // The connection dropped mid-body: keep what arrived. The response cannot reach the client anyway.
            await file.FlushAsync(lifetime.ApplicationStopping);
            return received;
        }

        await file.FlushAsync(lifetime.ApplicationStopping);
        return received;
    }

    private async Task<TusUpload> FindAsync(Guid id, Guid ownerId, CancellationToken ct)
    {
        var upload = await store.GetAsync(id, ownerId, ct) ?? throw NotFound();
        if (!upload.IsComplete && upload.ExpiresAt <= time.GetUtcNow())
        {
            throw new TusRejectedException(StatusCodes.Status410Gone, "tus.expired", "This upload expired; start a new one.");
        }

        return upload;
    }

    private long CurrentLength(Guid id)
    {
        var info = new FileInfo(blobs.TusUploadPath(id));
        return info.Exists ? info.Length : 0;
    }

    private (string FileName, string? Category, List<string> Tags, System.Text.Json.Nodes.JsonObject? Settings) ReadMetadata(string? header)
    {
        if (header is { Length: > 0 } && header.Length > options.Value.MaxMetadataBytes)
        {
            throw new TusRejectedException(StatusCodes.Status400BadRequest, "tus.metadata_too_large", $"Upload-Metadata is larger than {options.Value.MaxMetadataBytes} bytes (Kiln:Tus:MaxMetadataBytes).");
        }

        var metadata = TusProtocol.ParseMetadata(header ?? "");
        try
        {
            // Uppy and tus-js-client send the name as "filename" or "name"; other keys they add (filetype) are ignored:
            // the type is detected from the bytes, as for multipart uploads.
            var name = FileNames.Sanitize(metadata.GetValueOrDefault("filename") ?? metadata.GetValueOrDefault("name"));
            var category = metadata.TryGetValue("category", out var c) && c.Length > 0 ? FileNames.ValidateToken(c, "category") : null;
            var tags = metadata.TryGetValue("tags", out var t)
                ? t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => FileNames.ValidateToken(x, "tags")).Distinct(StringComparer.Ordinal).Take(50).ToList()
                : [];
            var settings = metadata.TryGetValue("settings", out var s) && s.Length > 0 ? UploadReader.ParseSettings(s) : null;
            if (planner.Validate(settings) is { } error)
            {
                throw new TusRejectedException(StatusCodes.Status400BadRequest, error.Code("tus"), error.Message);
            }

            return (name, category, tags, settings);
        }
        catch (UploadRejectedException e)
        {
            // The multipart checks, under tus codes: upload.bad_category becomes tus.bad_category.
            throw new TusRejectedException(e.Status, "tus." + e.Code[(e.Code.IndexOf('.', StringComparison.Ordinal) + 1)..], e.Message);
        }
    }

    private static TusRejectedException NotFound() => new(StatusCodes.Status404NotFound, "tus.not_found", "Upload not found.");

    private static TusRejectedException OffsetMismatch(long sent, long actual) =>
        new(StatusCodes.Status409Conflict, "tus.offset_mismatch", $"Upload-Offset is {sent} but the upload has {actual} bytes; ask with HEAD and resume from there.");

    private static TusRejectedException TooLarge(TusUpload upload) =>
        new(StatusCodes.Status413PayloadTooLarge, "tus.too_large", $"The body goes past Upload-Length ({upload.Length} bytes).");
}
