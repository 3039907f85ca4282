using System.Text.Json.Nodes;
using Kiln.Jobs;

namespace Kiln.Assets;

/// <summary>
/// A job an asset of a media kind gets by default (DESIGN.md §3). Registered by the feature that handles the kind,
/// so the pipeline grows as features are added. <see cref="When"/> decides per asset (e.g. enhance only some categories).
/// </summary>
internal sealed record PipelineStep(string MediaKind, string JobKind, Func<PipelineInput, bool>? When = null);

internal sealed record PipelineInput(string MediaKind, string? Category, JsonObject? Settings);

/// <summary>
/// Why settings were refused: <see cref="Reason"/> is the last part of the error code (<c>bad_settings</c> for the
/// shape, <c>bad_params</c> for a job kind's params), each endpoint putting its own prefix before it
/// (<c>upload.bad_params</c>, <c>batch.bad_params</c>, <c>tus.bad_params</c>, <c>fetch.bad_params</c>).
/// </summary>
internal sealed record SettingsError(string Reason, string Message)
{
    public const string BadSettings = "bad_settings";
    public const string BadParams = "bad_params";

    public string Code(string prefix) => $"{prefix}.{Reason}";
}

/// <summary>
/// Upload settings: <c>{"jobs": ["image.thumbnails", …], "params": {"image.optimize": {"format": "webp"}}, "priority": 3}</c>.
/// Every part is optional; without <c>jobs</c> the default pipeline of the media kind runs.
/// </summary>
internal sealed class PipelinePlanner(IEnumerable<PipelineStep> steps, JobKindCatalog catalog, JobStore jobStore)
{
    private readonly PipelineStep[] _steps = steps.ToArray();

    /// <summary>
    /// Validates settings, including every job kind's params as its own reader reads them (so a value the job would
    /// fail on is refused now, with its name); returns the error or null.
    /// </summary>
    public SettingsError? Validate(JsonObject? settings) => ValidateShape(settings) is { } shape
        ? new SettingsError(SettingsError.BadSettings, shape)
        : ValidateParams(settings) is { } bad ? new SettingsError(SettingsError.BadParams, bad) : null;

    private string? ValidateShape(JsonObject? settings)
    {
        if (settings is null)
        {
            return null;
        }

        foreach (var (key, _) in settings)
        {
            if (key is not ("jobs" or "params" or "priority"))
            {
                return $"Unknown settings field '{key}'; expected jobs, params or priority.";
            }
        }

        if (settings["jobs"] is { } jobs)
        {
            if (jobs is not JsonArray array || array.Any(j => j?.GetValueKind() != System.Text.Json.JsonValueKind.String))
            {
                return "settings.jobs must be an array of job kind names.";
            }

            foreach (var kind in array.Select(j => j!.GetValue<string>()))
            {
                if (!catalog.TryGet(kind, out _) || kind == Kinds.Probe)
                {
                    return $"settings.jobs names unknown job kind '{kind}'; valid kinds: {ValidKinds()}.";
                }
            }
        }

        if (settings["params"] is { } p && p is not JsonObject)
        {
            return "settings.params must be an object keyed by job kind.";
        }

        if (settings["params"] is JsonObject paramsByKind)
        {
            foreach (var (kind, value) in paramsByKind)
            {
                if (!catalog.TryGet(kind, out _))
                {
                    return $"settings.params names unknown job kind '{kind}'; valid kinds: {ValidKinds()}.";
                }

                if (value is not JsonObject)
                {
                    return $"settings.params.{kind} must be an object.";
                }
            }
        }

        if (settings["priority"] is { } priority && (priority.GetValueKind() != System.Text.Json.JsonValueKind.Number || priority.GetValue<double>() is < 0 or > 1000))
        {
            return "settings.priority must be a number from 0 to 1000.";
        }

        return null;
    }

    private string? ValidateParams(JsonObject? settings)
    {
        if (settings?["params"] is not JsonObject paramsByKind)
        {
            return null;
        }

        foreach (var (kind, value) in paramsByKind)
        {
            if (catalog.Get(kind).CheckParams((JsonObject)value!) is { } error)
            {
                return error;
            }
        }

        return null;
    }

    private string ValidKinds() =>
        string.Join(", ", catalog.All.Select(k => k.Kind).Where(k => k != Kinds.Probe).Order(StringComparer.Ordinal));

    /// <summary>
    /// Checks that every job <paramref name="settings"/> asks for runs on <paramref name="mediaKind"/>: a text file
    /// must never reach ffmpeg as a "video" (a playlist inside it would name other files to read). Returns the
    /// message naming the kind, or null. The default pipeline only ever picks kinds of the asset's own media kind.
    /// </summary>
    public string? CheckMediaKind(string mediaKind, JsonObject? settings)
    {
        if (settings?["jobs"] is not JsonArray chosen)
        {
            return null;
        }

        foreach (var kind in chosen.Select(j => j!.GetValue<string>()))
        {
            if (catalog.TryGet(kind, out var info) && !info.RunsOn(mediaKind))
            {
                return info.WrongMediaKind(mediaKind);
            }
        }

        return null;
    }

    /// <summary>
    /// The jobs for a new asset: a <c>probe</c> first, and the pipeline's jobs as its children, so they start only
    /// once the asset's metadata is known.
    /// </summary>
    public List<NewJob> Plan(Guid assetId, Guid ownerId, Guid? batchId, string mediaKind, string? category, JsonObject? settings)
    {
        var input = new PipelineInput(mediaKind, category, settings);
        IEnumerable<string> kinds = settings?["jobs"] is JsonArray chosen
            ? chosen.Select(j => j!.GetValue<string>())
            : _steps.Where(s => s.MediaKind == mediaKind && (s.When?.Invoke(input) ?? true)).Select(s => s.JobKind);
        int? priority = settings?["priority"] is { } p ? (int)p.GetValue<double>() : null;

        if (CheckMediaKind(mediaKind, settings) is { } mismatch)
        {
            throw new InvalidOperationException(mismatch + " Callers check with CheckMediaKind first.");
        }

        var probe = NewJob(Kinds.Probe, assetId, ownerId, batchId, null, null, priority);
        var jobs = new List<NewJob> { probe };
        foreach (var kind in kinds.Distinct(StringComparer.Ordinal))
        {
            var parameters = settings?["params"]?[kind]?.DeepClone() as JsonObject;
            jobs.Add(NewJob(kind, assetId, ownerId, batchId, probe.Id, parameters, priority));
        }

        return jobs;
    }

    private NewJob NewJob(string kind, Guid assetId, Guid ownerId, Guid? batchId, Guid? parentId, JsonObject? parameters, int? priority)
    {
        var info = catalog.Get(kind);
        return new NewJob
        {
            Kind = kind,
            Queue = info.Queue,
            AssetId = assetId,
            OwnerId = ownerId,
            BatchId = batchId,
            ParentId = parentId,
            Priority = priority ?? info.Priority,
            MaxAttempts = info.MaxAttempts ?? jobStore.DefaultMaxAttempts,
            Params = parameters,
        };
    }
}
