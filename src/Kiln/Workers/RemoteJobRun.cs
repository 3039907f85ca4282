using System.Net.Http.Headers;
using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Queue;

namespace Kiln.Workers;

/// <summary>
/// One lease on the worker side: fetch the input, run the handler through <see cref="JobExecutor"/> exactly as an
/// in-process slot would, upload what it wrote, report the end. Progress goes out as it comes but at most every
/// <see cref="MinProgressInterval"/> per job (the newest value waits, none is reordered).
/// </summary>
internal sealed class RemoteJobRun : IDisposable
{
    public static readonly TimeSpan MinProgressInterval = TimeSpan.FromMilliseconds(100);

    private readonly LeaseMessage _lease;
    private readonly MessageSocket _socket;
    private readonly HttpClient _http;
    private readonly string _workRoot;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _cts = new();
    private readonly Lock _gate = new();
    private int _reason = -1;
    private bool _finished;

    private readonly Func<Guid, Guid, bool> _otherAttemptRunning;
    private bool _cleaned;

    /// <param name="otherAttemptRunning">Whether another lease of the job (job id, this lease id) runs on this worker.</param>
    public RemoteJobRun(LeaseMessage lease, MessageSocket socket, HttpClient http, string workRoot, ILogger logger, Func<Guid, Guid, bool> otherAttemptRunning)
    {
        _otherAttemptRunning = otherAttemptRunning;
        _lease = lease;
        _socket = socket;
        _http = http;
        _workRoot = workRoot;
        _logger = logger;
    }

    public Guid JobId => _lease.JobId;

    public Guid LeaseId => _lease.LeaseId;

    /// <summary>Why the job was stopped from outside; null while it runs, or when the worker itself gives it back.</summary>
    public JobStopReason? Reason => _reason < 0 ? null : (JobStopReason)_reason;

    /// <summary>Stops the job (its handler's token is cancelled: ffmpeg is killed); with no reason it is given back to the queue.</summary>
    public void Stop(JobStopReason? reason)
    {
        if (reason is { } r)
        {
            Interlocked.CompareExchange(ref _reason, (int)r, -1);
            lock (_gate)
            {
                // The server already dropped the lease: nothing more may be said about it.
                _finished = true;
            }
        }

        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The job already ended; nothing left to stop.
        }
    }

    public async Task RunAsync(IReadOnlyDictionary<string, IJobHandler> handlers)
    {
        var directories = new JobDirectories(_workRoot, _lease.JobId, _lease.LeaseId);
        using var scope = _logger.BeginScope(new Dictionary<string, object> { ["jobId"] = _lease.JobId, ["kind"] = _lease.Kind });
        try
        {
            ExecutionResult result;
            if (!handlers.TryGetValue(_lease.Kind, out var handler))
            {
                result = new ExecutionResult.Failed("unknown_kind", $"No handler for {_lease.Kind} in this worker.", Retryable: true);
            }
            else if (await DownloadInputAsync(directories) is { } failed)
            {
                result = failed;
            }
            else
            {
                var context = new JobContext
                {
                    Lease = ToJobLease(),
                    InputPath = _lease.InputUrl is null ? null : InputPath(directories),
                    Directories = directories,
                    Progress = new ProgressForwarder(new ProgressMailbox(SendProgressAsync, _logger), _lease.JobId, _lease.LeaseId),
                };
                result = await JobExecutor.RunAsync(handler, context, () => Reason, _cts.Token);
            }

            await ReportAsync(result, directories);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Job {JobId} could not be reported; its lease will expire", _lease.JobId);
        }
        finally
        {
            // Normally done before the last word went out; here for a run that ended in an exception.
            Cleanup(directories);
        }
    }

    private void Cleanup(JobDirectories directories)
    {
        if (!_cleaned)
        {
            _cleaned = true;
            directories.EndAttempt(Reason, () => _otherAttemptRunning(_lease.JobId, _lease.LeaseId), _logger);
        }
    }

    public void Dispose() => _cts.Dispose();

    private async Task ReportAsync(ExecutionResult result, JobDirectories directories)
    {
        switch (result)
        {
            case ExecutionResult.Succeeded { Outcome: var outcome }:
                var outputs = outcome.Outputs?.Select(o => new OutputMessage(
                    o.Type, o.RelativePath.Replace(Path.DirectorySeparatorChar, '/'), o.ContentType, o.Variant, o.Width, o.Height, o.Duration)).ToList();
                var uploadError = outputs is { Count: > 0 } ? await UploadOutputsAsync(directories) : null;
                Cleanup(directories);
                if (uploadError is not null)
                {
                    Finish(new FailMessage(WorkerProtocol.Fail, _lease.JobId, _lease.LeaseId, "output_upload_failed", uploadError, Retryable: true));
                    break;
                }

                Finish(new CompleteMessage(WorkerProtocol.Complete, _lease.JobId, _lease.LeaseId, outcome.Result, outputs, outcome.AssetMetadata));
                break;
            case ExecutionResult.Failed f:
                _logger.LogWarning("Job {JobId} failed: {Code} {Message}", _lease.JobId, f.ErrorCode, f.Message);
                Cleanup(directories);
                Finish(new FailMessage(WorkerProtocol.Fail, _lease.JobId, _lease.LeaseId, f.ErrorCode, f.Message, f.Retryable));
                break;
            case ExecutionResult.Stopped { Reason: null }:
                Cleanup(directories);
                Finish(new ReleaseMessage(WorkerProtocol.Release, _lease.JobId, _lease.LeaseId));
                break;
            case ExecutionResult.Stopped:
                break;
        }
    }

    /// <summary>Sends the job's last word, unless the server already took the lease away.</summary>
    private void Finish<T>(T message)
    {
        lock (_gate)
        {
            if (_finished)
            {
                return;
            }

            _finished = true;
            _socket.Post(message);
        }
    }

    private async Task SendProgressAsync(ProgressReport report)
    {
        lock (_gate)
        {
            if (_finished)
            {
                return;
            }

            _socket.Post(new ProgressMessage(
                WorkerProtocol.Progress, report.JobId, report.LeaseId, Math.Clamp(report.Progress, 0, 100), report.Stage, report.Speed, report.EtaSeconds, report.TotalBytes));
        }

        // The forwarder sends one report at a time and keeps only the newest waiting, so this pause is the throttle.
        await Task.Delay(MinProgressInterval, _cts.Token);
    }

    private static string InputPath(JobDirectories directories) => Path.Combine(directories.Work, "input");

    /// <summary>Downloads the asset's original; a failure is a retryable job failure.</summary>
    private async Task<ExecutionResult?> DownloadInputAsync(JobDirectories directories)
    {
        if (_lease.InputUrl is null)
        {
            return null;
        }

        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, _lease.InputUrl);
            request.Headers.Add(WorkerEndpoints.JobTokenHeader, _lease.Token);
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, _cts.Token);
            if (!response.IsSuccessStatusCode)
            {
                return new ExecutionResult.Failed("input_download_failed", $"Downloading the input answered {(int)response.StatusCode}.", Retryable: true);
            }

            await using var body = await response.Content.ReadAsStreamAsync(_cts.Token);
            await using var file = new FileStream(InputPath(directories), FileMode.Create, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous);
            await body.CopyToAsync(file, _cts.Token);
            return null;
        }
        catch (OperationCanceledException) when (_cts.IsCancellationRequested)
        {
            return new ExecutionResult.Stopped(Reason);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return new ExecutionResult.Failed("input_download_failed", e.Message, Retryable: true);
        }
    }

    /// <summary>Uploads every file of the output directory (a playlist's segments too, not only the named outputs); returns an error or null.</summary>
    private async Task<string?> UploadOutputsAsync(JobDirectories directories)
    {
        var root = directories.OutputPath;
        if (!Directory.Exists(root))
        {
            return "The handler named outputs but wrote none.";
        }

        try
        {
            var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).ToList();
            await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = _cts.Token }, async (path, ct) =>
            {
                var relative = Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/');
                var url = _lease.OutputUrl + string.Join('/', relative.Split('/').Select(Uri.EscapeDataString));
                await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous);
                using var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = new StreamContent(file) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                request.Headers.Add(WorkerEndpoints.JobTokenHeader, _lease.Token);
                using var response = await _http.SendAsync(request, ct);
                if (!response.IsSuccessStatusCode)
                {
                    throw new HttpRequestException($"Uploading {relative} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct)}");
                }
            });
            return null;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
            _logger.LogWarning(e, "Uploading the outputs of {JobId} failed", _lease.JobId);
            return e.Message;
        }
    }

    private JobLease ToJobLease() => new()
    {
        JobId = _lease.JobId,
        LeaseId = _lease.LeaseId,
        Kind = _lease.Kind,
        Queue = _lease.Queue,
        Attempt = _lease.Attempt,
        MaxAttempts = _lease.MaxAttempts,
        LeaseExpiresAt = _lease.LeaseExpiresAt,
        Params = _lease.Params,

        // The worker has no data directory: the input is the downloaded file, and the stored path means nothing here.
        Asset = _lease.Asset is { } a ? new LeasedAsset(a.Id, a.Kind, a.ContentType, a.OriginalName, a.Size, "", a.Category, a.Metadata) : null,
    };
}
