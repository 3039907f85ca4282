using System.Collections.Concurrent;

namespace Kiln.Realtime;

/// <summary>
/// This node's hub connections: how many there are, which jobs they watch (counted per job) and how many admins
/// watch every job. The event path reads it lock-free on every event, so an unwatched job costs one dictionary
/// probe; joins and leaves take a lock.
/// </summary>
internal sealed class WatchRegistry
{
    private readonly ConcurrentDictionary<Guid, Watch> _jobs = new();
    private readonly Lock _gate = new();
    private int _all;
    private int _connections;

    /// <summary>Raised when a job gains its first watcher (the id), or when watching everything starts or stops (null).</summary>
    public event Action<Guid?>? Changed;

    public bool WatchesAll => Volatile.Read(ref _all) > 0;

    /// <summary>Hub connections open on this node.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public void Connected() => Interlocked.Increment(ref _connections);

    public void Disconnected() => Interlocked.Decrement(ref _connections);

    public bool IsWatched(Guid jobId) => _jobs.ContainsKey(jobId);

    public bool TryGet(Guid jobId, out Watch watch) => _jobs.TryGetValue(jobId, out watch!);

    public int Count => _jobs.Count;

    public ICollection<Guid> Jobs => _jobs.Keys;

    public void Add(Guid jobId)
    {
        bool first;
        lock (_gate)
        {
            first = !_jobs.TryGetValue(jobId, out var watch);
            if (first)
            {
                watch = new Watch();
                _jobs[jobId] = watch;
            }

            watch!.Watchers++;
        }

        if (first)
        {
            Changed?.Invoke(jobId);
        }
    }

    public void Remove(Guid jobId)
    {
        lock (_gate)
        {
            if (_jobs.TryGetValue(jobId, out var watch) && --watch.Watchers <= 0)
            {
                _jobs.TryRemove(jobId, out _);
            }
        }
    }

    public void AddAll()
    {
        if (Interlocked.Increment(ref _all) == 1)
        {
            Changed?.Invoke(null);
        }
    }

    public void RemoveAll()
    {
        var left = Interlocked.Decrement(ref _all);
        if (left < 0)
        {
            Interlocked.Exchange(ref _all, 0);
        }
        else if (left == 0)
        {
            Changed?.Invoke(null);
        }
    }

    /// <summary>One watched job: how many joins hold it and whether its end was already sent to them.</summary>
    internal sealed class Watch
    {
        private int _terminalSent;

        public int Watchers { get; set; }

        public bool TerminalSent => Volatile.Read(ref _terminalSent) == 1;

        public void MarkTerminalSent() => Volatile.Write(ref _terminalSent, 1);
    }
}
