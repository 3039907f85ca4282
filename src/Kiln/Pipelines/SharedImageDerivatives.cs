using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media.Images;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Pipelines;

/// <summary>
/// One decode per upload for <c>image.optimize</c> and <c>image.thumbnails</c> (issue 14), keeping both jobs. The first
/// of the two to start, while the other is still queued, makes BOTH derivatives from one decode
/// (<see cref="SharedDecode"/>): its own into its output directory as usual, the sibling's into the sibling's work
/// directory with a manifest. When the sibling starts it adopts them (moves the files into its own output directory and
/// returns the recorded outcome), so its derivative rows, result, progress, retry and cancel stay its own; if nothing
/// fits (the leader failed, was cancelled, or was still writing) it decodes on its own as before.
/// </summary>
/// <remarks>
/// Why not hold the decoded image in memory between the two jobs: the queue orders by priority (thumbnails first), so
/// with many uploads an asset's two jobs run minutes apart, and 40 decoded images in memory is not bounded. Why the
/// sibling's work directory: it is the sibling's own (created on first use, removed at the end of each attempt), and the
/// cleanup sweep removes it if the sibling ends without running. Only in-process workers lead or adopt (the work
/// directories of a remote worker are on another machine); remote workers run the two jobs as before.
/// </remarks>
internal sealed class SharedImageDerivatives(VipsReady vips, IOptions<ImageOptions> options, IEnumerable<JobReader> readers)
{
    private const string StagePrefix = "shared-";
    private const string ManifestName = "manifest.json";

    /// <summary>While a job waits for its sibling here, it repeats its progress this often so it is not taken for stalled.</summary>
    private static readonly TimeSpan WaitReport = TimeSpan.FromSeconds(10);

    private readonly Dictionary<Guid, (SemaphoreSlim Lock, int Users)> _gates = [];

    /// <summary>
    /// The job reader, on the server only (an optional dependency, hence the enumerable): <c>kiln worker</c> registers
    /// the same handlers without a database, and there every job works alone.
    /// </summary>
    private readonly JobReader? _jobs = readers.FirstOrDefault();

    public ImageLimits Limits => vips.Limits;

    /// <summary>True where jobs share (Kiln:Images:ShareDecodeAcrossJobs on): in the server's own process, with the job store and the jobs' work directories.</summary>
    public bool Available => options.Value.ShareDecodeAcrossJobs && _jobs is not null;

    /// <summary>
    /// Lets one image derivative job of an asset run at a time in this process, for the whole job. Why: when both jobs
    /// start together (one upload on an idle server), the first leads and the second must wait to adopt, not decode
    /// alongside; a job that goes alone (an image that does not share) keeps it so its sibling does not make its
    /// outputs again. Jobs of different assets never wait for each other.
    /// </summary>
    public async Task<IDisposable> EnterAsync(JobContext context, CancellationToken cancellationToken)
    {
        var asset = context.Asset?.Id ?? Guid.Empty;
        SemaphoreSlim gate;
        lock (_gates)
        {
            if (!_gates.TryGetValue(asset, out var entry))
            {
                entry = (new SemaphoreSlim(1, 1), 0);
            }

            _gates[asset] = (entry.Lock, entry.Users + 1);
            gate = entry.Lock;
        }

        try
        {
            while (!await gate.WaitAsync(WaitReport, cancellationToken))
            {
                context.Progress.Report(new JobProgress(5, "waiting for the shared decode", TotalBytes: context.InputBytes));
            }
        }
        catch
        {
            Leave(asset, release: false);
            throw;
        }

        return new Exit(() => Leave(asset, release: true));
    }

    private void Leave(Guid asset, bool release)
    {
        lock (_gates)
        {
            var (gate, users) = _gates[asset];
            if (release)
            {
                gate.Release();
            }

            if (users == 1)
            {
                _gates.Remove(asset);
                gate.Dispose();
            }
            else
            {
                _gates[asset] = (gate, users - 1);
            }
        }
    }

    private sealed class Exit(Action leave) : IDisposable
    {
        public void Dispose() => leave();
    }

    /// <summary>What a leader leaves for its sibling: the outcome, and what it was made from, to check it still fits.</summary>
    private sealed record Staged(string Kind, Guid AssetId, long? InputBytes, JsonObject Params, JsonNode? Result, List<OutputFile> Outputs);

    /// <summary>
    /// The outcome a sibling already made for this job, its files moved into this attempt's output directory; null when
    /// there is none that was made for this asset's file with exactly these params.
    /// </summary>
    public static JobOutcome? TryAdopt(JobContext context)
    {
        if (context.Asset is not { } asset || !context.Directories.Created)
        {
            return null;
        }

        foreach (var stage in Directory.EnumerateDirectories(context.WorkDirectory, StagePrefix + "*"))
        {
            var manifest = Path.Combine(stage, ManifestName);
            var staged = File.Exists(manifest) ? JsonSerializer.Deserialize<Staged>(File.ReadAllText(manifest)) : null;
            if (staged is null
                || staged.Kind != context.Lease.Kind
                || staged.AssetId != asset.Id
                || staged.InputBytes != context.InputBytes
                || !JsonNode.DeepEquals(staged.Params, context.Params))
            {
                continue;
            }

            foreach (var output in staged.Outputs)
            {
                File.Move(Path.Combine(stage, output.RelativePath), Path.Combine(context.OutputDirectory, output.RelativePath), overwrite: true);
            }

            Directory.Delete(stage, recursive: true);
            return new JobOutcome(staged.Result, staged.Outputs);
        }

        return null;
    }

    /// <summary>
    /// Makes this job's derivatives and those of its queued sibling from one decode, leaving the sibling's staged for it;
    /// null (nothing made) when there is no queued sibling, its params do not read, or the image does not share a decode
    /// (<see cref="SharedDecode.Applies"/>): the caller then does its own work alone.
    /// </summary>
    public async Task<(JobOutcome Outcome, int Decodes)?> TryLeadAsync(JobContext context, CancellationToken cancellationToken)
    {
        var kind = context.Lease.Kind;
        var siblingKind = kind == ImagePipeline.Optimize ? ImagePipeline.Thumbnails : ImagePipeline.Optimize;
        if (context.Asset is not { } asset)
        {
            return null;
        }

        // A sibling running in this process waits at the gate (EnterAsync) and will adopt; one running elsewhere would not.
        // This job's own row names the worker it runs on (this process's in-process workers).
        var jobs = await _jobs!.ListForAssetAsync(null, asset.Id, cancellationToken);
        var here = jobs.FirstOrDefault(j => j.Id == context.JobId)?.LeaseOwner;
        var sibling = jobs.FirstOrDefault(j =>
            j.Kind == siblingKind && j.Id != context.JobId
            && (j.State is JobState.Queued or JobState.Waiting || (j.State == JobState.Running && here is not null && j.LeaseOwner == here)));
        if (sibling is null)
        {
            return null;
        }

        var siblingParams = sibling.Params ?? [];
        OptimizeOptions optimize;
        IReadOnlyList<ThumbnailSpec> thumbnails;
        try
        {
            (optimize, thumbnails) = kind == ImagePipeline.Optimize
                ? (JobParams.Read(context.Params, ImageOptimizeHandler.ReadParams), JobParams.Read(siblingParams, ImageThumbnailsHandler.ReadParams))
                : (JobParams.Read(siblingParams, ImageOptimizeHandler.ReadParams), JobParams.Read(context.Params, ImageThumbnailsHandler.ReadParams));
        }
        catch (JobParamsException)
        {
            // The sibling fails its own params when it runs; this job does its own work meanwhile.
            return null;
        }

        // The sibling's work directory, as JobDirectories lays it out: next to this job's, named by the job id.
        var siblingWork = Path.Combine(Path.GetDirectoryName(context.WorkDirectory)!, sibling.Id.ToString("N"));
        var stageName = StagePrefix + Guid.NewGuid().ToString("N")[..8];
        var partial = Path.Combine(siblingWork, "." + stageName + ".partial");
        Directory.CreateDirectory(partial);
        try
        {
            var (optimizeDirectory, thumbnailsDirectory) = kind == ImagePipeline.Optimize ? (context.OutputDirectory, partial) : (partial, context.OutputDirectory);
            var made = SharedDecode.Make(
                context.RequireInput(),
                new OptimizeRequest(Path.Combine(optimizeDirectory, ImageOutcomes.OptimizedName), optimize),
                new ThumbnailsRequest(thumbnailsDirectory, thumbnails),
                vips.Limits,
                cancellationToken);
            if (made is null)
            {
                Directory.Delete(partial, recursive: true);
                return null;
            }

            var (own, theirs) = kind == ImagePipeline.Optimize
                ? (ImageOutcomes.Optimized(made.Optimized), ImageOutcomes.Thumbnails(made.Thumbnails))
                : (ImageOutcomes.Thumbnails(made.Thumbnails), ImageOutcomes.Optimized(made.Optimized));
            var staged = new Staged(siblingKind, asset.Id, context.InputBytes, siblingParams, theirs.Result, [.. theirs.Outputs!]);
            await File.WriteAllTextAsync(Path.Combine(partial, ManifestName), JsonSerializer.Serialize(staged), cancellationToken);

            // One rename publishes the staged set: the sibling sees all of it or nothing.
            Directory.Move(partial, Path.Combine(siblingWork, stageName));
            return (own, made.Decodes);
        }
        catch
        {
            if (Directory.Exists(partial))
            {
                Directory.Delete(partial, recursive: true);
            }

            throw;
        }
    }
}

/// <summary>The job outcomes of the image derivatives: one shape whether a job made them alone or with its sibling.</summary>
internal static class ImageOutcomes
{
    /// <summary>The optimized file's name before its extension.</summary>
    public const string OptimizedName = "optimized";

    public static JobOutcome Optimized(OptimizeResult r) => new(
        new JsonObject
        {
            ["format"] = r.Format,
            ["width"] = r.Width,
            ["height"] = r.Height,
            ["frames"] = r.Frames,
            ["originalBytes"] = r.OriginalBytes,
            ["outputBytes"] = r.OutputBytes,
            ["bytesSaved"] = r.BytesSaved,
            ["ratio"] = Math.Round(r.Ratio, 4),
            ["keptOriginal"] = r.KeptOriginal,
        },
        [new OutputFile("OPTIMIZED", Path.GetFileName(r.OutputPath), r.ContentType, Width: r.Width, Height: r.Height)]);

    public static JobOutcome Thumbnails(IReadOnlyList<ThumbnailResult> results) => new(
        new JsonObject
        {
            ["thumbnails"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
            {
                ["name"] = r.Name,
                ["width"] = r.Width,
                ["height"] = r.Height,
                ["bytes"] = r.Bytes,
            }).ToArray()),
        },
        results.Select(r => new OutputFile(r.Name, Path.GetFileName(r.Path), r.ContentType, Width: r.Width, Height: r.Height)).ToList());

    /// <summary>
    /// The one order every image derivative job follows: adopt what its sibling made for it, else make its own and its
    /// sibling's from one decode, else (remote worker, no queued sibling, an image that does not share) make its own.
    /// </summary>
    public static async Task<(JobOutcome Outcome, int Decodes)> SharedOrAloneAsync(
        SharedImageDerivatives? shared,
        JobContext context,
        Func<(JobOutcome Outcome, int Decodes)> alone,
        CancellationToken cancellationToken)
    {
        // Decided from the header before anything waits: a JPEG's jobs never pass the gate or look up their sibling.
        if (shared is not { Available: true } || !SharedDecode.Applies(context.RequireInput(), shared.Limits))
        {
            return alone();
        }

        using var gate = await shared.EnterAsync(context, cancellationToken);
        if (SharedImageDerivatives.TryAdopt(context) is { } adopted)
        {
            return (adopted, 0);
        }

        return await shared.TryLeadAsync(context, cancellationToken) ?? alone();
    }

    /// <summary>Counts the decodes of originals an image job made (0 when it adopted what its sibling made).</summary>
    public static void Decoded(KilnMetrics metrics, string kind, int decodes) => metrics.Increment(
        "kiln_image_decodes_total",
        "Decodes of original images by image jobs: one per upload when optimize and thumbnails share it.",
        KilnMetrics.Labels(("kind", kind)),
        decodes);
}
