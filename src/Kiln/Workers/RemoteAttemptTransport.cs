using System.Net.Http.Headers;
using Kiln.Processing;
using Kiln.Queue;

namespace Kiln.Workers;

/// <summary>
/// One lease on a remote worker, as the <see cref="AttemptRunner"/> sees it: the input is downloaded, outputs are
/// uploaded, and progress and the end of the attempt go to the server as messages. Progress goes out as it comes
/// but at most every <see cref="MinProgressInterval"/> per job (the newest value waits, none is reordered). Stop
/// requests arrive as <c>cancel</c> messages, which <see cref="RemoteWorker"/> hands to the runner.
/// </summary>
internal sealed class RemoteAttemptTransport(LeaseMessage lease, MessageSocket socket, HttpClient http, ILogger logger) : IAttemptTransport
{
    public static readonly TimeSpan MinProgressInterval = TimeSpan.FromMilliseconds(100);

    public IDisposable? ListenForStop(Attempt attempt) => null;

    /// <summary>Downloads the asset's original; a failure is a retryable job failure.</summary>
    public async Task<string?> FetchInputAsync(Attempt attempt, CancellationToken cancellationToken)
    {
        if (lease.InputUrl is null)
        {
            return null;
        }

        var path = Path.Combine(attempt.Directories.Work, "input");
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, lease.InputUrl);
            request.Headers.Add(WorkerEndpoints.JobTokenHeader, lease.Token);
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new JobFailedException("input_download_failed", $"Downloading the input answered {(int)response.StatusCode}.", retryable: true);
            }

            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous);
            await body.CopyToAsync(file, cancellationToken);
            return path;
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            throw new JobFailedException("input_download_failed", e.Message, retryable: true, e);
        }
    }

    public async Task SendProgressAsync(Attempt attempt, ProgressReport report)
    {
        var sent = attempt.TrySend(() => socket.Post(new ProgressMessage(
            WorkerProtocol.Progress, report.JobId, report.LeaseId, Math.Clamp(report.Progress, 0, 100), report.Stage, report.Speed, report.EtaSeconds, report.TotalBytes)));

        // The mailbox sends one report at a time and keeps only the newest waiting, so this pause is the throttle.
        if (sent)
        {
            await Task.Delay(MinProgressInterval, attempt.Token);
        }
    }

    public async Task CompleteAsync(Attempt attempt, JobOutcome outcome, Action endAttempt)
    {
        var outputs = outcome.Outputs?.Select(o => new OutputMessage(
            o.Type, o.RelativePath.Replace(Path.DirectorySeparatorChar, '/'), o.ContentType, o.Variant, o.Width, o.Height, o.Duration)).ToList();
        var uploadError = outputs is { Count: > 0 } ? await UploadOutputsAsync(attempt) : null;

        // The outputs are on the server now (or will never be): the local copy goes before the server hears.
        endAttempt();
        if (uploadError is not null)
        {
            attempt.TrySendLast(() => socket.Post(new FailMessage(WorkerProtocol.Fail, lease.JobId, lease.LeaseId, "output_upload_failed", uploadError, Retryable: true)));
            return;
        }

        attempt.TrySendLast(() => socket.Post(new CompleteMessage(WorkerProtocol.Complete, lease.JobId, lease.LeaseId, outcome.Result, outputs, outcome.AssetMetadata)));
    }

    public Task FailAsync(Attempt attempt, ExecutionResult.Failed failure)
    {
        attempt.TrySendLast(() => socket.Post(new FailMessage(WorkerProtocol.Fail, lease.JobId, lease.LeaseId, failure.ErrorCode, failure.Message, failure.Retryable)));
        return Task.CompletedTask;
    }

    public Task ReleaseAsync(Attempt attempt)
    {
        attempt.TrySendLast(() => socket.Post(new ReleaseMessage(WorkerProtocol.Release, lease.JobId, lease.LeaseId)));
        return Task.CompletedTask;
    }

    /// <summary>The lease as a handler sees it. The worker has no data directory: the input is the downloaded file.</summary>
    public static JobLease ToJobLease(LeaseMessage lease) => new()
    {
        JobId = lease.JobId,
        LeaseId = lease.LeaseId,
        Kind = lease.Kind,
        Queue = lease.Queue,
        Attempt = lease.Attempt,
        MaxAttempts = lease.MaxAttempts,
        LeaseExpiresAt = lease.LeaseExpiresAt,
        Params = lease.Params,
        Asset = lease.Asset is { } a ? new LeasedAsset(a.Id, a.Kind, a.ContentType, a.OriginalName, a.Size, "", a.Category, a.Metadata) : null,
    };

    /// <summary>Uploads every file of the output directory (a playlist's segments too, not only the named outputs); returns an error or null.</summary>
    private async Task<string?> UploadOutputsAsync(Attempt attempt)
    {
        var root = attempt.Directories.OutputPath;
        if (!Directory.Exists(root))
        {
            return "The handler named outputs but wrote none.";
        }

        try
        {
            var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).ToList();
            await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = attempt.Token }, async (path, ct) =>
            {
                var relative = Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/');
                var url = lease.OutputUrl + string.Join('/', relative.Split('/').Select(Uri.EscapeDataString));
                await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous);
                using var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = new StreamContent(file) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                request.Headers.Add(WorkerEndpoints.JobTokenHeader, lease.Token);
                using var response = await http.SendAsync(request, ct);
                if (!response.IsSuccessStatusCode)
                {
                    throw new HttpRequestException($"Uploading {relative} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
                }
            });
            return null;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            logger.LogWarning(e, "Uploading the outputs of {JobId} failed", lease.JobId);
            return e.Message;
        }
    }
}
