using System.Collections.Concurrent;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Storage;

namespace Kiln.Workers;

/// <summary>A job leased to a remote worker over one connection.</summary>
internal sealed class RemoteJob(JobLease lease)
{
    public JobLease Lease { get; } = lease;

    /// <summary>The job's registration with <see cref="Jobs.JobSignals"/>: cancel, pause and stalls reach it through it.</summary>
    public IDisposable? Signal { get; set; }

    public ProgressMailbox? Progress { get; set; }

    /// <summary>The server-side staging directory the worker uploads this lease's outputs into.</summary>
    public string OutputDirectory(BlobStore blobs) => new JobDirectories(blobs.JobsTemp, Lease.JobId, Lease.LeaseId).OutputPath;
}

/// <summary>Whether a message names a job this connection holds.</summary>
internal enum LeaseCheck
{
    Held,

    /// <summary>A lease the server took back (cancel, pause, stall, lost) that the worker may not have heard of yet.</summary>
    Stale,

    Unknown,
}

/// <summary>
/// The jobs one connection holds, by lease, and its free slots. A job leaves the set exactly once — reported by the
/// worker, stopped by the server, or settled at the end of the session — so no two of those can both act on it.
/// </summary>
internal sealed class RemoteJobSet : IDisposable
{
    private readonly ConcurrentDictionary<Guid, RemoteJob> _jobs = new();
    private readonly ConcurrentDictionary<Guid, Guid> _stopped = new();
    private readonly ConcurrentDictionary<Task, byte> _reporting = new();

    public int Count => _jobs.Count;

    /// <summary>The slots the worker announced (none until its hello); freed as the jobs leave the set.</summary>
    public SlotPool Slots { get; } = new();

    public ICollection<RemoteJob> All => _jobs.Values;

    public void Add(RemoteJob job) => _jobs[job.Lease.LeaseId] = job;

    public LeaseCheck Check(Guid jobId, Guid leaseId, out RemoteJob job)
    {
        if (_jobs.TryGetValue(leaseId, out job!) && job.Lease.JobId == jobId)
        {
            return LeaseCheck.Held;
        }

        return _stopped.TryGetValue(leaseId, out var stopped) && stopped == jobId ? LeaseCheck.Stale : LeaseCheck.Unknown;
    }

    public bool IsHeld(RemoteJob job) => _jobs.TryGetValue(job.Lease.LeaseId, out var held) && ReferenceEquals(held, job);

    /// <summary>Removes the job because the worker reported its end; false when something else removed it first.</summary>
    public bool TryTake(RemoteJob job)
    {
        if (!_jobs.TryRemove(new KeyValuePair<Guid, RemoteJob>(job.Lease.LeaseId, job)))
        {
            return false;
        }

        job.Signal?.Dispose();
        return true;
    }

    /// <summary>Removes the job because the server stopped it; later reports about its lease count as stale.</summary>
    public bool TryStop(RemoteJob job)
    {
        if (!TryTake(job))
        {
            return false;
        }

        if (_stopped.Count >= 10_000)
        {
            _stopped.Clear();
        }

        _stopped[job.Lease.LeaseId] = job.Lease.JobId;
        return true;
    }

    /// <summary>Everything still held, removed from the set (the session ended).</summary>
    public List<RemoteJob> TakeAll()
    {
        var taken = new List<RemoteJob>();
        foreach (var job in _jobs.Values)
        {
            if (TryTake(job))
            {
                taken.Add(job);
            }
        }

        return taken;
    }

    /// <summary>Keeps track of a report being written, so the end of the session can wait for it.</summary>
    public void Track(Task report)
    {
        _reporting[report] = 0;
        _ = report.ContinueWith(t => _reporting.TryRemove(t, out _), TaskScheduler.Default);
    }

    public Task ReportsWrittenAsync() => Task.WhenAll(_reporting.Keys);

    /// <summary>Removes what was staged for the lease and was not published (published outputs were moved away).</summary>
    public static void DeleteStaging(RemoteJob job, BlobStore blobs, ILogger logger)
    {
        var path = job.OutputDirectory(blobs);
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }

            var parent = Path.GetDirectoryName(path)!;
            if (Directory.Exists(parent) && !Directory.EnumerateFileSystemEntries(parent).Any())
            {
                Directory.Delete(parent);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            logger.LogWarning(e, "Could not delete the staged outputs of job {JobId}", job.Lease.JobId);
        }
    }

    public void Dispose() => Slots.Dispose();
}
