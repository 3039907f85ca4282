using System.Text.Json.Nodes;

namespace Kiln.Jobs;

/// <summary>
/// What the server knows about a job kind even when no handler for it runs in this process (remote workers may
/// serve it): its queue, default priority (lower runs first), whether a running job can be paused, and the media
/// kinds of asset it runs on (null: it needs none, as <c>probe</c> and <c>fetch</c>). <see cref="Params"/> is the
/// one reader of its params (<see cref="JobParams"/>); null only for kinds whose params the server itself writes
/// (<c>fetch</c>) or tests alone use, which are never checked.
/// </summary>
internal sealed record JobKindInfo(
    string Kind, string Queue, int Priority, bool Pausable = false, int? MaxAttempts = null, IReadOnlyList<string>? MediaKinds = null,
    JobParamsReader? Params = null)
{
    /// <summary>True when a job of this kind may run on an asset of <paramref name="mediaKind"/>.</summary>
    public bool RunsOn(string? mediaKind) => MediaKinds is null || (mediaKind is not null && MediaKinds.Contains(mediaKind));

    /// <summary>The message for an asset this kind does not run on, naming both.</summary>
    public string WrongMediaKind(string? mediaKind) =>
        $"Job kind '{Kind}' runs on {string.Join(" or ", MediaKinds ?? [])} assets; this asset is {mediaKind ?? "unknown"}.";

    /// <summary>Reads <paramref name="parameters"/> as a job of this kind would; the message naming kind and param, or null.</summary>
    public string? CheckParams(JsonObject parameters)
    {
        if (Params is null)
        {
            return null;
        }

        try
        {
            JobParams.Read(parameters, p => Params(p));
            return null;
        }
        catch (JobParamsException e)
        {
            return $"Job kind '{Kind}': {e.Message}";
        }
    }
}

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

    public static readonly IReadOnlyList<string> Image = ["image"];
    public static readonly IReadOnlyList<string> Video = ["video"];
    public static readonly IReadOnlyList<string> Audio = ["audio"];
    public static readonly IReadOnlyList<string> AudioOrVideo = ["audio", "video"];
}
