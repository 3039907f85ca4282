using System.ComponentModel.DataAnnotations;
using System.Text.Json.Nodes;
using Kiln.Assets;
using Kiln.Jobs;
using Kiln.Media.Images;
using Kiln.Media.Vips;
using Kiln.Processing;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Kiln.Pipelines;

/// <summary>Section <c>Kiln:Images</c>: libvips settings and the limits on what it decodes.</summary>
internal sealed class ImageOptions
{
    public const string Section = "Kiln:Images";

    /// <summary>Largest image accepted, in pixels of one frame; refused from the header, before decoding. Kiln__Images__MaxPixels.</summary>
    [Range(1, 10_000_000_000)]
    public long MaxPixels { get; set; } = 100_000_000;

    /// <summary>Most animation frames decoded together.</summary>
    [Range(1, 100_000)]
    public int MaxFrames { get; set; } = 1000;

    /// <summary>
    /// Largest decoded image (pixels) kept in memory to make several derivatives from one decode: the optimized copy and
    /// the thumbnails of an upload (full size, docs/images.md "One decode per upload"), or a thumbnails job's sizes
    /// (after shrink-on-load). Larger images are decoded once per derivative, streaming. Kiln__Images__SharedDecodeMaxPixels.
    /// </summary>
    [Range(0, 10_000_000_000)]
    public long SharedDecodeMaxPixels { get; set; } = 40_000_000;

    /// <summary>
    /// Whether image.optimize and image.thumbnails of one upload share one decode (PNG, TIFF, GIF, WebP, and JPEG, whose
    /// thumbnails then start from a box average of the full decode: docs/images.md "One decode per upload").
    /// Kiln__Images__ShareDecodeAcrossJobs.
    /// </summary>
    public bool ShareDecodeAcrossJobs { get; set; } = true;

    /// <summary>Threads libvips uses inside one image; jobs already run in parallel, so 1 is usually best.</summary>
    [Range(0, 64)]
    public int VipsConcurrency { get; set; } = 1;

    /// <summary>
    /// When image work pauses (<see cref="ReleaseMemoryIdleMilliseconds"/> with no image job running), hand the malloc
    /// arenas' free pages back to the system (glibc <c>malloc_trim</c>): what libvips' worker threads free stays in the
    /// process as fragmented free space otherwise. Not after every job: the next job faults the same pages in again, and
    /// the trim itself walks every arena (~17 ms of CPU per upload of the default pipeline, docs/benchmarks.md).
    /// Kiln__Images__ReleaseMemoryAfterJobs.
    /// </summary>
    public bool ReleaseMemoryAfterJobs { get; set; } = true;

    /// <summary>
    /// How long no image job must run before the memory goes back; 0: whenever none runs. 10000 by default: a trim
    /// empties the decode buffers kept for reuse and makes the next job fault its pages in again (3-5x the page faults,
    /// ~5-10 % more CPU per upload on a busy server; docs/benchmarks.md "Decode buffers kept for the next image"), and
    /// at 1000 every upload of someone sending one image every few seconds paid it: the alpha PNG thumbnails job took
    /// 100-115 ms instead of 60-66 ms (docs/benchmarks.md "The idle trim and uploads a few seconds apart").
    /// Kiln__Images__ReleaseMemoryIdleMilliseconds.
    /// </summary>
    [Range(0, 600_000)]
    public int ReleaseMemoryIdleMilliseconds { get; set; } = 10_000;

    /// <summary>
    /// Free heap memory (MiB) malloc keeps while images are processed rather than handing it back at every free, which
    /// made each image fault in and zero its buffers again (a fifth of a JPEG thumbnail's CPU, docs/benchmarks.md);
    /// it goes back when image work pauses (<see cref="ReleaseMemoryAfterJobs"/>). 0: glibc's defaults.
    /// Kiln__Images__MallocRetainMegabytes.
    /// </summary>
    [Range(0, 2047)]
    public int MallocRetainMegabytes { get; set; } = 128;

    /// <summary>A repeated libvips warning is logged once per this many seconds, then as a count. Kiln__Images__VipsLogWindowSeconds.</summary>
    [Range(1, 86_400)]
    public int VipsLogWindowSeconds { get; set; } = 60;

    /// <summary>Most different libvips messages logged per window; the rest are counted. Kiln__Images__VipsLogMaxDistinct.</summary>
    [Range(1, 10_000)]
    public int VipsLogMaxDistinct { get; set; } = 20;

    /// <summary>Asset categories whose images get <c>image.enhance</c> by default.</summary>
    public string[] EnhanceCategories { get; set; } = ["DISP", "DECD"];

    /// <summary>Decode plain PNGs with Kiln's managed decoder (.NET's zlib-ng) rather than libvips' libpng (docs/images.md).</summary>
    public bool ManagedPngDecoder { get; set; } = true;

    public ImageLimits Limits => new()
    {
        MaxPixels = MaxPixels,
        MaxFrames = MaxFrames,
        MaxTotalPixels = Math.Max(MaxPixels, 4 * MaxPixels),
        SharedDecodeMaxPixels = SharedDecodeMaxPixels,
        ManagedPngDecoder = ManagedPngDecoder,
    };
}

/// <summary>The image job kinds (DESIGN.md §3) and their default pipeline.</summary>
internal static class ImagePipeline
{
    public const string Optimize = "image.optimize";
    public const string Thumbnails = "image.thumbnails";
    public const string Enhance = "image.enhance";

    public static WebApplicationBuilder AddKilnImagePipeline(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<ImageOptions>().BindConfiguration(ImageOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddKilnImageHandlers();

        // Optimize and thumbnails share one decode through the job store and the local work directories: on the server;
        // `kiln worker` registers this too but has no job store, so its jobs decode alone (SharedImageDerivatives.Available).
        builder.Services.AddSingleton<SharedImageDerivatives>();
        var categories = builder.Configuration.GetSection(ImageOptions.Section).Get<ImageOptions>()?.EnhanceCategories ?? new ImageOptions().EnhanceCategories;
        builder.Services.AddPipelineStep(new PipelineStep("image", Optimize));
        builder.Services.AddPipelineStep(new PipelineStep("image", Thumbnails));
        builder.Services.AddPipelineStep(new PipelineStep("image", Enhance, input =>
            input.Category is not null && categories.Contains(input.Category, StringComparer.OrdinalIgnoreCase)));
        return builder;
    }

    /// <summary>Handlers and kinds; shared with the remote worker, which runs the same handlers.</summary>
    public static IServiceCollection AddKilnImageHandlers(this IServiceCollection services)
    {
        services.AddOptions<ImageOptions>().BindConfiguration(ImageOptions.Section);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<VipsReady>();
        services.AddSingleton<IAssetProber, ImageAssetProber>();
        services.AddJobKind<ImageThumbnailsHandler>(new JobKindInfo(Thumbnails, Kinds.ImageQueue, Priority: 5, MediaKinds: Kinds.Image, Params: ImageThumbnailsHandler.ReadParams));
        services.AddJobKind<ImageOptimizeHandler>(new JobKindInfo(Optimize, Kinds.ImageQueue, Priority: 10, MediaKinds: Kinds.Image, Params: ImageOptimizeHandler.ReadParams));
        services.AddJobKind<ImageEnhanceHandler>(new JobKindInfo(Enhance, Kinds.ImageQueue, Priority: 10, MediaKinds: Kinds.Image, Params: ImageEnhanceHandler.ReadParams));
        return services;
    }
}

/// <summary>
/// Initialises libvips once, with the configured settings, before the first image job touches it, and logs
/// libvips' warnings through the host's logger while the host lives.
/// </summary>
internal sealed class VipsReady : IDisposable
{
    private readonly ILogger<VipsReady> _logger;
    private readonly RepeatedLogFilter _filter;

    public VipsReady(IOptions<ImageOptions> options, ILogger<VipsReady> logger, TimeProvider time)
        : this(options, logger, time, () => VipsRuntime.ReleaseFreeMemory())
    {
    }

    /// <param name="release">What hands free memory back (tests count the calls).</param>
    internal VipsReady(IOptions<ImageOptions> options, ILogger<VipsReady> logger, TimeProvider time, Action release)
    {
        _release = release;
        _idle = TimeSpan.FromMilliseconds(options.Value.ReleaseMemoryIdleMilliseconds);
        _releaseTimer = time.CreateTimer(_ => ReleaseIfIdle(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _logger = logger;
        _filter = new RepeatedLogFilter(Write, time, TimeSpan.FromSeconds(options.Value.VipsLogWindowSeconds), options.Value.VipsLogMaxDistinct);
        var applied = VipsRuntime.Initialize(new VipsSettings
        {
            Concurrency = options.Value.VipsConcurrency,
            BlockUntrustedLoaders = true,
            MallocRetainBytes = (long)options.Value.MallocRetainMegabytes << 20,
        });
        VipsRuntime.Logged += _filter.Log;
        // glibc reads MALLOC_ARENA_MAX only as the process starts, so Kiln's launchers set it (docs/images.md, "Memory").
        logger.LogInformation(
            "libvips {Version} ready: {Settings}; malloc arenas: {Arenas}", applied.Version, applied,
            Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") ?? "glibc default (8 per core; MALLOC_ARENA_MAX=2 keeps fewer)");
        Limits = options.Value.Limits;
        _releaseMemory = options.Value.ReleaseMemoryAfterJobs;
    }

    private readonly bool _releaseMemory;
    private readonly Action _release;
    private readonly TimeSpan _idle;
    private readonly ITimer _releaseTimer;

    /// <summary>Image jobs between <see cref="JobMemory"/> and its end.</summary>
    private int _running;

    public ImageLimits Limits { get; }

    /// <summary>
    /// For the length of an image job (<c>using var _ = vips.JobMemory();</c>): when it ends and no image job has run
    /// for the idle time since, the memory libvips freed goes back to the system, when configured to.
    /// </summary>
    public IDisposable JobMemory()
    {
        if (!_releaseMemory)
        {
            return NoRelease.Instance;
        }

        Interlocked.Increment(ref _running);
        return new MemoryRelease(this);
    }

    private sealed class MemoryRelease(VipsReady owner) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0 && Interlocked.Decrement(ref owner._running) == 0)
            {
                // A later end moves the deadline; a job running when it comes keeps the pages (ReleaseIfIdle).
                owner._releaseTimer.Change(owner._idle, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private sealed class NoRelease : IDisposable
    {
        public static readonly NoRelease Instance = new();

        public void Dispose()
        {
        }
    }

    private void ReleaseIfIdle()
    {
        if (Volatile.Read(ref _running) == 0)
        {
            _release();
        }
    }

    public void Dispose()
    {
        _releaseTimer.Dispose();
        VipsRuntime.Logged -= _filter.Log;
        _filter.Dispose();
    }

    private void Write(VipsLogLevel level, string message) => _logger.Log(
        level switch { VipsLogLevel.Critical => LogLevel.Error, VipsLogLevel.Warning => LogLevel.Warning, _ => LogLevel.Information },
        "libvips: {VipsMessage}",
        message);
}

/// <summary>Probe metadata of images, read from the header: refuses an image over the pixel limit before decoding it.</summary>
internal sealed class ImageAssetProber(VipsReady vips) : IAssetProber
{
    public string MediaKind => "image";

    public Task<JsonObject> ProbeAsync(string path, CancellationToken cancellationToken)
    {
        var info = ImageProbe.Read(path, cancellationToken);
        vips.Limits.EnsureWithin(info);

        return Task.FromResult(new JsonObject
        {
            ["width"] = info.Width,
            ["height"] = info.Height,
            ["format"] = info.Format,
            ["orientation"] = info.Orientation,
            ["hasAlpha"] = info.HasAlpha,
            ["frames"] = info.Pages,
            ["animated"] = info.IsAnimated,
            ["bands"] = info.Bands,
            ["interpretation"] = info.Interpretation,
        });
    }
}
