using System.Collections.Concurrent;

namespace Kiln.Realtime;

/// <summary>
/// This node's hub connections: which are open, which jobs they watch (counted per job) and how many admins
/// watch every job. The event path reads it lock-free on every event, so an unwatched job costs one dictionary
/// probe; joins and leaves take a lock.
/// </summary>
internal sealed class WatchRegistry
{
    private readonly ConcurrentDictionary<Guid, Watch> _jobs = new();
    private readonly ConcurrentDictionary<string, byte> _connections = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private int _all;
    private int _new;

    /// <summary>Raised when a job gains its first watcher (the id), or when watching everything or new jobs starts or stops (null).</summary>
    public event Action<Guid?>? Changed;

    public bool WatchesAll => Volatile.Read(ref _all) > 0;

    /// <summary>Some connection wants new jobs announced (<c>join-new</c>) without following every job.</summary>
    public bool WatchesNew => Volatile.Read(ref _new) > 0;

    /// <summary>Ids of the hub connections open on this node (a snapshot).</summary>
    public ICollection<string> Connections => _connections.Keys;

    public void Connected(string connectionId) => _connections.TryAdd(connectionId, 0);

    public void Disconnected(string connectionId) => _connections.TryRemove(connectionId, out _);

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

    public void AddAll() => Increment(ref _all);

    public void RemoveAll() => Decrement(ref _all);

    public void AddNew() => Increment(ref _new);

    public void RemoveNew() => Decrement(ref _new);

    private void Increment(ref int count)
    {
        if (Interlocked.Increment(ref count) == 1)
        {
            Changed?.Invoke(null);
        }
    }

    private void Decrement(ref int count)
    {
        var left = Interlocked.Decrement(ref count);
        if (left < 0)
        {
            Interlocked.Exchange(ref count, 0);
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
