using System.Text.Json.Nodes;
using Kiln.Assets;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Media.Detection;
using Kiln.Processing;
using Kiln.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Fetch;

/// <summary>
/// <c>fetch</c>: downloads the URL into a directory that survives pause, retry and restart, then publishes it as the
/// asset's original and plans the asset's pipeline exactly as an upload does (<see cref="PipelinePlanner"/>).
/// Params: <c>url</c>, <c>mode</c>, <c>settings</c>.
/// </summary>
internal sealed class FetchHandler(
    DirectDownloader direct,
    YtDlpDownloader ytdlp,
    Aria2Downloader aria2,
    IOptions<FetchOptions> options,
    FetchModeChooser chooser,
    BlobStore blobs,
    PipelinePlanner planner,
    JobStore jobs,
    NpgsqlDataSource dataSource,
    ILogger<FetchHandler> logger) : IJobHandler
{
    private const string FinalizeSql = """
        update assets set kind = @kind, content_type = @content_type, size = @size, path = @path,
            metadata = metadata || jsonb_build_object('fetch', @fetch::jsonb)
        where id = @id and not (metadata ? 'fetch')
        returning owner_id, category
        """;

    public string Kind => Kinds.Fetch;

    /// <summary>Where a fetch keeps its partial file: outside the attempt's work directory, which a failed attempt loses.</summary>
    public static string DownloadDirectory(BlobStore blobs, Guid jobId) => Path.Combine(blobs.Root, "tmp", "fetch", jobId.ToString("N"));

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var asset = context.Asset ?? throw new JobFailedException("fetch.bad_params", "A fetch job needs its asset.");
        var url = FetchUrl.Parse(context.Params["url"]?.GetValue<string>(), out var error)
            ?? throw new JobFailedException("fetch.bad_params", error!);
        var settings = context.Params["settings"] as JsonObject;
        var directory = DownloadDirectory(blobs, context.JobId);
        DownloadResult download;
        string mode;
        try
        {
            mode = await chooser.ChooseAsync(url, context.Params["mode"]?.GetValue<string>() ?? "auto", directory, cancellationToken);
            download = mode == "ytdlp" ? await ytdlp.DownloadAsync(url, directory, context.Progress, cancellationToken)
                : options.Value.Aria2Connections > 0 ? await aria2.DownloadAsync(url, directory, context.Progress, cancellationToken)
                : await direct.DownloadAsync(url, directory, context.Progress, cancellationToken);
        }
        catch (JobFailedException e) when (!e.Retryable)
        {
            DirectDownloader.Forget(directory);
            throw;
        }

        var sniffed = await SniffAsync(download.Path, cancellationToken);
        var mediaKind = sniffed.Kind.ToName();
        if (sniffed.Kind == MediaKind.Other && download.ContentType is "text/html" or "application/xhtml+xml")
        {
            DirectDownloader.Forget(directory);
            throw new JobFailedException("fetch.not_media", "The URL answered with a web page, not a media file; page URLs need the yt-dlp downloader.");
        }

        if (planner.CheckMediaKind(mediaKind, settings) is { } mismatch)
        {
            DirectDownloader.Forget(directory);
            throw new JobFailedException("fetch.job_not_for_media", mismatch);
        }

        await PublishAsync(asset.Id, download, sniffed, settings, url, cancellationToken);
        DirectDownloader.Forget(directory);
        return new JobOutcome(new JsonObject
        {
            ["size"] = download.Size,
            ["transferred"] = download.Transferred,
            ["restarted"] = download.Restarted,
            ["kind"] = mediaKind,
            ["mode"] = mode,
            ["contentType"] = sniffed.ContentType,
        });
    }

    private static async Task<SniffResult> SniffAsync(string path, CancellationToken ct)
    {
        var header = new byte[ContentSniffer.HeaderLength];
        await using var file = File.OpenRead(path);
        var length = await file.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, ct);
        return ContentSniffer.Sniff(header.AsSpan(0, length));
    }

    /// <summary>
    /// Renames the file into place, then in one transaction fills in the asset and enqueues its pipeline. A second
    /// run (the job retried after a crash here) finds the asset already filled in and changes nothing.
    /// </summary>
    private async Task PublishAsync(Guid assetId, DownloadResult download, SniffResult sniffed, JsonObject? settings, Uri url, CancellationToken ct)
    {
        var relative = BlobStore.OriginalRelativePath(assetId);
        var target = blobs.Resolve(relative);
        await using (var check = dataSource.CreateCommand("select metadata ? 'fetch' from assets where id = @id"))
        {
            check.Parameters.AddWithValue("id", assetId);
            if (await check.ExecuteScalarAsync(ct) is not false)
            {
                logger.LogInformation("Fetch of {Url}: asset {AssetId} was already published or is gone", FetchUrl.Redact(url), assetId);
                return;
            }
        }

        // Only a crash between the rename and the commit leaves a file here; the asset does not point at it yet.
        if (File.Exists(target))
        {
            File.Delete(target);
        }

        blobs.PublishOriginal(download.Path, assetId);
        try
        {
            await using var conn = await dataSource.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            Guid owner;
            string? category;
            await using (var cmd = new NpgsqlCommand(FinalizeSql, conn, tx))
            {
                cmd.Parameters.AddWithValue("id", assetId);
                cmd.Parameters.AddWithValue("kind", sniffed.Kind.ToName());
                cmd.Parameters.AddWithValue("content_type", sniffed.ContentType);
                cmd.Parameters.AddWithValue("size", download.Size);
                cmd.Parameters.AddWithValue("path", relative);
                cmd.Parameters.AddWithValue("fetch", new JsonObject { ["restarted"] = download.Restarted, ["transferred"] = download.Transferred }.ToJsonString());
                await using var reader = await cmd.ExecuteReaderAsync(ct);
                if (!await reader.ReadAsync(ct))
                {
                    logger.LogInformation("Fetch of {Url}: asset {AssetId} was already published or is gone", FetchUrl.Redact(url), assetId);
                    return;
                }

                (owner, category) = (reader.GetGuid(0), reader.IsDBNull(1) ? null : reader.GetString(1));
            }

            var planned = planner.Plan(assetId, owner, null, sniffed.Kind.ToName(), category, settings);
            var enqueued = await jobs.EnqueueAsync(planned, conn, tx, ct);
            await tx.CommitAsync(ct);
            jobs.Announce(enqueued);
        }
        catch
        {
            // Put the file back so the retry publishes it instead of downloading it again.
            if (File.Exists(target) && !File.Exists(download.Path))
            {
                File.Move(target, download.Path);
            }

            throw;
        }
    }
}
