using System.Collections.Concurrent;

namespace Kiln.Realtime;

/// <summary>
/// Which other nodes asked for a class of events (every job's, or new jobs' announcements), each until its interest
/// expires unless renewed. Read on every event, so <see cref="Active"/> is one volatile read.
/// </summary>
internal sealed class OriginLeases
{
    private readonly ConcurrentDictionary<string, long> _until = new(StringComparer.Ordinal);
    private long _latest;

    public bool Active(long now) => Volatile.Read(ref _latest) > now;

    /// <summary>Records what <paramref name="origin"/> said in its latest interest message.</summary>
    public void Set(string origin, bool wanted, long until)
    {
        if (wanted)
        {
            _until[origin] = until;
        }
        else
        {
            _until.TryRemove(origin, out _);
        }

        Refresh();
    }

    public void Prune(long now)
    {
        foreach (var (origin, until) in _until)
        {
            if (until <= now)
            {
                _until.TryRemove(new KeyValuePair<string, long>(origin, until));
            }
        }

        Refresh();
    }

    private void Refresh() => Volatile.Write(ref _latest, _until.IsEmpty ? 0 : _until.Values.Max());
}
