using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Kiln.Processing;
using Microsoft.Extensions.Options;

namespace Kiln.Fetch;

/// <summary>What a finished download left: the file, its size, and whether it had to start over.</summary>
internal sealed record DownloadResult(string Path, long Size, long Transferred, bool Restarted, string? ContentType);

/// <summary>
/// Streams a URL to <c>download.part</c> in a directory that outlives the attempt, resuming with <c>Range</c> and
/// <c>If-Range</c> on the stored validator. An origin without Range support, or whose file changed (a 200 to a
/// ranged request), makes it start over, which it logs and reports as the <c>restarted</c> stage.
/// </summary>
internal sealed class DirectDownloader(IHttpClientFactory clients, IOptions<FetchOptions> options, ILogger<DirectDownloader> logger)
{
    public const string ClientName = "kiln-fetch";
    private const string PartName = "download.part";
    private const string ValidatorName = "validator.json";
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(250);

    public async Task<DownloadResult> DownloadAsync(Uri url, string directory, IProgress<JobProgress> progress, CancellationToken ct)
    {
        var o = options.Value;
        Directory.CreateDirectory(directory);
        var part = Path.Combine(directory, PartName);
        var validatorPath = Path.Combine(directory, ValidatorName);
        var existing = File.Exists(part) ? new FileInfo(part).Length : 0;
        var validator = existing > 0 && File.Exists(validatorPath) ? JsonSerializer.Deserialize<Validator>(await File.ReadAllTextAsync(validatorPath, ct)) : null;

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (validator?.IfRange() is { } ifRange)
        {
            request.Headers.Range = new RangeHeaderValue(existing, null);
            request.Headers.IfRange = ifRange;
        }

        // One token for the caller (pause, cancel), one for the attempt's duration, one for a stall (re-armed per read).
        using var duration = new CancellationTokenSource(TimeSpan.FromSeconds(o.MaxDurationSeconds));
        using var idle = new CancellationTokenSource(TimeSpan.FromSeconds(o.IdleTimeoutSeconds));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, duration.Token, idle.Token);
        progress.Report(new JobProgress(0, "resolving"));
        try
        {
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
            ThrowOnStatus(response, o.MaxRedirects);
            var resumed = response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange?.From == existing;
            var restarted = existing > 0 && !resumed;
            if (restarted)
            {
                logger.LogInformation("Fetch {Url}: the origin {Reason}; starting over", FetchUrl.Redact(url),
                    response.Headers.AcceptRanges.Contains("bytes") ? "answered the ranged request with the whole file (it changed)" : "does not support Range");
                existing = 0;
            }

            var length = response.Content.Headers.ContentLength;
            long? total = length is null ? null : existing + length.Value;
            if (total > o.MaxBytes)
            {
                throw new JobFailedException("fetch.too_large", $"The file is {total} bytes, over the limit of {o.MaxBytes} (Kiln:Fetch:MaxBytes).");
            }

            if (!resumed)
            {
                await File.WriteAllTextAsync(validatorPath, JsonSerializer.Serialize(Validator.From(response)), ct);
            }

            var transferred = await CopyAsync(response, part, existing, total, resumed, restarted, idle, progress, linked.Token);
            return new DownloadResult(part, new FileInfo(part).Length, transferred, restarted, response.Content.Headers.ContentType?.MediaType);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && idle.IsCancellationRequested)
        {
            throw new JobFailedException("fetch.stalled", $"No bytes arrived for {o.IdleTimeoutSeconds} s (Kiln:Fetch:IdleTimeoutSeconds); retrying resumes.", retryable: true);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && duration.IsCancellationRequested)
        {
            throw new JobFailedException("fetch.timeout", $"The attempt ran longer than {o.MaxDurationSeconds} s (Kiln:Fetch:MaxDurationSeconds); retrying resumes.", retryable: true);
        }
        catch (HttpRequestException e)
        {
            throw Classify(e);
        }
        catch (IOException e) when (!ct.IsCancellationRequested)
        {
            throw new JobFailedException("fetch.connection_lost", $"The connection dropped: {e.Message}; retrying resumes.", retryable: true, e);
        }
    }

    /// <summary>The first bytes of <paramref name="url"/> (a ranged GET) and its Content-Type, for choosing a downloader.</summary>
    public async Task<(MediaTypeHeaderValue? ContentType, byte[] Head)> HeadAsync(Uri url, int bytes, CancellationToken ct)
    {
        var o = options.Value;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Range = new RangeHeaderValue(0, bytes - 1);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        idle.CancelAfter(TimeSpan.FromSeconds(o.IdleTimeoutSeconds));
        try
        {
            using var response = await clients.CreateClient(ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, idle.Token);
            ThrowOnStatus(response, o.MaxRedirects);
            if ((response.Content.Headers.ContentRange?.Length ?? response.Content.Headers.ContentLength) is { } size && size > o.MaxBytes)
            {
                throw new JobFailedException("fetch.too_large", $"The file is {size} bytes, over the limit of {o.MaxBytes} (Kiln:Fetch:MaxBytes).");
            }

            await using var body = await response.Content.ReadAsStreamAsync(idle.Token);
            var head = new byte[bytes];
            var read = await body.ReadAtLeastAsync(head, bytes, throwOnEndOfStream: false, idle.Token);
            return (response.Content.Headers.ContentType, head[..read]);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new JobFailedException("fetch.stalled", $"No answer for {o.IdleTimeoutSeconds} s (Kiln:Fetch:IdleTimeoutSeconds); retrying.", retryable: true);
        }
        catch (HttpRequestException e)
        {
            throw Classify(e);
        }
        catch (IOException e) when (!ct.IsCancellationRequested)
        {
            throw new JobFailedException("fetch.connection_lost", $"The connection dropped: {e.Message}; retrying.", retryable: true, e);
        }
    }

    /// <summary>Removes what a download left, after it was published or failed for good.</summary>
    public static void Forget(string directory)
    {
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private async Task<long> CopyAsync(
        HttpResponseMessage response, string part, long existing, long? total, bool append, bool restarted,
        CancellationTokenSource idle, IProgress<JobProgress> progress, CancellationToken ct)
    {
        var o = options.Value;
        var idleTimeout = TimeSpan.FromSeconds(o.IdleTimeoutSeconds);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await using var file = new FileStream(part, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.Read, 1, FileOptions.Asynchronous);
        var buffer = new byte[256 * 1024];
        var stage = restarted ? "downloading (restarted)" : "downloading";
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        long transferred = 0, reportedBytes = 0;
        var written = existing;
        int read;
        while ((read = await body.ReadAsync(buffer, ct)) > 0)
        {
            idle.CancelAfter(idleTimeout);
            written += read;
            transferred += read;
            if (written > o.MaxBytes)
            {
                throw new JobFailedException("fetch.too_large", $"The download passed the limit of {o.MaxBytes} bytes (Kiln:Fetch:MaxBytes).");
            }

            await file.WriteAsync(buffer.AsMemory(0, read), ct);
            var now = clock.Elapsed;
            if (now - lastReport >= ReportEvery)
            {
                var speed = (transferred - reportedBytes) / (now - lastReport).TotalSeconds;
                double? eta = total is { } t && speed > 0 ? (t - written) / speed : null;
                progress.Report(new JobProgress(total is { } tt && tt > 0 ? 100.0 * written / tt : 0, stage, speed, eta, total ?? written));
                (lastReport, reportedBytes) = (now, transferred);
            }
        }

        await file.FlushAsync(ct);
        if (total is { } expected && written != expected)
        {
            throw new JobFailedException("fetch.connection_lost", $"The origin sent {written} of {expected} bytes; retrying resumes.", retryable: true);
        }

        progress.Report(new JobProgress(100, "finalizing", TotalBytes: written));
        return transferred;
    }

    private static void ThrowOnStatus(HttpResponseMessage response, int maxRedirects)
    {
        var status = (int)response.StatusCode;
        if (status is >= 200 and < 300)
        {
            return;
        }

        throw status switch
        {
            404 or 410 => new JobFailedException("fetch.not_found", $"The origin answered {status}: the file is not there."),
            401 or 403 => new JobFailedException("fetch.forbidden", $"The origin answered {status}: access is refused."),
            >= 300 and < 400 => new JobFailedException("fetch.too_many_redirects", $"More than {maxRedirects} redirects (Kiln:Fetch:MaxRedirects), or a redirect Kiln does not follow such as https to http (answered {status})."),
            408 or 429 or >= 500 => new JobFailedException("fetch.http_error", $"The origin answered {status}; retrying.", retryable: true),
            _ => new JobFailedException("fetch.http_error", $"The origin answered {status}."),
        };
    }

    /// <summary>A refusal by the guard fails for good; any other connection error is retried.</summary>
    private static JobFailedException Classify(HttpRequestException e) =>
        FindForbidden(e) is { } forbidden
            ? new JobFailedException(forbidden.Code, forbidden.Message, retryable: false, e)
            : new JobFailedException("fetch.connection_failed", $"Could not reach the origin: {e.Message}", retryable: true, e);

    private static FetchForbiddenException? FindForbidden(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is FetchForbiddenException f)
            {
                return f;
            }
        }

        return null;
    }

    /// <summary>What identifies the bytes of the partial file, for If-Range. Weak ETags cannot be used there.</summary>
    private sealed record Validator(string? ETag, DateTimeOffset? LastModified)
    {
        public static Validator From(HttpResponseMessage response) =>
            new(response.Headers.ETag is { IsWeak: false } etag ? etag.Tag : null, response.Content.Headers.LastModified);

        public RangeConditionHeaderValue? IfRange() =>
            ETag is not null ? new RangeConditionHeaderValue(new EntityTagHeaderValue(ETag))
            : LastModified is { } lm ? new RangeConditionHeaderValue(lm)
            : null;
    }
}
