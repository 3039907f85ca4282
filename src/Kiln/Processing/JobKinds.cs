namespace Kiln.Processing;

/// <summary>
/// What the server knows about a job kind even when no handler for it runs in this process (remote workers may
/// serve it): its queue, default priority (lower runs first) and whether a running job can be paused.
/// </summary>
internal sealed record JobKindInfo(string Kind, string Queue, int Priority, bool Pausable = false, int? MaxAttempts = null);

/// <summary>The catalogue of job kinds, filled from DI registrations.</summary>
internal sealed class JobKindCatalog
{
    private readonly Dictionary<string, JobKindInfo> _kinds;

    public JobKindCatalog(IEnumerable<JobKindInfo> kinds)
    {
        _kinds = new Dictionary<string, JobKindInfo>(StringComparer.Ordinal);
        foreach (var kind in kinds)
        {
            _kinds[kind.Kind] = kind;
        }
    }

    public IReadOnlyCollection<JobKindInfo> All => _kinds.Values;

    public bool TryGet(string kind, out JobKindInfo info) => _kinds.TryGetValue(kind, out info!);

    public JobKindInfo Get(string kind) =>
        _kinds.TryGetValue(kind, out var info) ? info : throw new KeyNotFoundException($"Unknown job kind '{kind}'.");
}

/// <summary>Well-known kinds and queues (DESIGN.md §3). Priorities follow the seed documents.</summary>
internal static class Kinds
{
    public const string Probe = "probe";
    public const string Fetch = "fetch";

    public const string DefaultQueue = "default";
    public const string ImageQueue = "image";
    public const string VideoQueue = "video";
    public const string AudioQueue = "audio";
}
