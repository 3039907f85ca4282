using System.Text.Json.Nodes;

namespace Kiln.Jobs;

/// <summary>Names of job events as the hub sends them (DESIGN.md §4).</summary>
internal static class JobEventType
{
    public const string Queued = "job-queued";
    public const string Progress = "job-progress";
    public const string Completed = "job-completed";
    public const string Error = "job-error";
    public const string Update = "job-update";

    /// <summary>A transcript version was added or activated (Transcription builds it; the hub routes it).</summary>
    public const string TranscriptUpdated = "transcript-updated";
}

/// <summary>Something happened to a job. <see cref="Data"/> is the payload the hub sends (it always carries jobId).</summary>
internal sealed record JobEvent(string Type, Guid JobId, Guid? OwnerId, JsonObject Data);

/// <summary>
/// Where the queue reports what happens to jobs. The queue calls it on hot paths, so implementations must return
/// quickly and never throw; fan-out to hubs and other nodes happens behind it.
/// </summary>
internal interface IJobEventSink
{
    void Publish(JobEvent jobEvent);
}

/// <summary>Fans events out to every registered listener (hub, metrics, cross-node relay).</summary>
internal sealed class JobEventBus(IEnumerable<IJobEventListener> listeners, ILogger<JobEventBus> logger) : IJobEventSink
{
    private readonly IJobEventListener[] _listeners = listeners.ToArray();

    public void Publish(JobEvent jobEvent)
    {
        foreach (var listener in _listeners)
        {
            try
            {
                listener.OnJobEvent(jobEvent);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Job event listener {Listener} failed for {JobId}", listener.GetType().Name, jobEvent.JobId);
            }
        }
    }
}

/// <summary>Receives job events in-process; must not block.</summary>
internal interface IJobEventListener
{
    void OnJobEvent(JobEvent jobEvent);
}

/// <summary>Builds event payloads in one place so every transport sends the same shape.</summary>
internal static class JobEvents
{
    public static JobEvent Queued(Guid jobId, Guid? ownerId, long? position = null) =>
        new(JobEventType.Queued, jobId, ownerId, new JsonObject { ["jobId"] = jobId, ["position"] = position });

    public static JobEvent Progress(Guid jobId, Guid? ownerId, string? stage, double progress, double? speed, double? eta, long? totalBytes)
    {
        var data = new JsonObject { ["jobId"] = jobId, ["stage"] = stage, ["progress"] = Math.Round(progress, 2) };
        if (speed is not null)
        {
            data["speed"] = speed;
        }

        if (eta is not null)
        {
            data["eta"] = eta;
        }

        if (totalBytes is not null)
        {
            data["totalBytes"] = totalBytes;
        }

        return new(JobEventType.Progress, jobId, ownerId, data);
    }

    public static JobEvent Completed(Guid jobId, Guid? ownerId, JsonNode? result) =>
        new(JobEventType.Completed, jobId, ownerId, new JsonObject { ["jobId"] = jobId, ["result"] = result?.DeepClone() });

    public static JobEvent Error(Guid jobId, Guid? ownerId, string errorCode, string message) =>
        new(JobEventType.Error, jobId, ownerId, new JsonObject { ["jobId"] = jobId, ["errorCode"] = errorCode, ["message"] = message });

    public static JobEvent Update(Guid jobId, Guid? ownerId, string? status, string? stage = null, double? progress = null)
    {
        var data = new JsonObject { ["jobId"] = jobId };
        if (status is not null)
        {
            data["status"] = status;
        }

        if (stage is not null)
        {
            data["stage"] = stage;
        }

        if (progress is not null)
        {
            data["progress"] = progress;
        }

        return new(JobEventType.Update, jobId, ownerId, data);
    }
}
