using Kiln.Media.FFmpeg;

namespace Kiln.Media.Video;

/// <summary>
/// Packages a video as HLS: a rendition ladder up to the source size, fixed-length segments aligned on
/// keyframes, VOD playlists and a master playlist with BANDWIDTH, RESOLUTION and CODECS. Rung heights mean the
/// shorter side of the frame, so a portrait 1080x1920 phone clip gets a 1080p rendition 1080 wide.
/// </summary>
/// <remarks>
/// Output layout: <c>outputDir/master.m3u8</c>, <c>outputDir/{name}/index.m3u8</c> and its segments. Everything
/// is written into a hidden staging directory first and moved into place only on success, so a cancelled or
/// failed run leaves <c>outputDir</c> as it was.
/// </remarks>
public sealed class HlsPackager
{
    private const string Stage = "hls";
    private readonly FfmpegRunner _runner;
    private readonly MediaProber _prober;
    private readonly AvLimits _limits;

    public HlsPackager(FfmpegRunner runner, AvLimits? limits = null)
    {
        _runner = runner;
        _prober = new MediaProber(runner);
        _limits = limits ?? AvLimits.Default;
    }

    /// <exception cref="MediaException"><c>media.no_video</c>, <c>media.hls_incomplete</c>, and the probe and runner codes.</exception>
    public async Task<HlsResult> PackageAsync(
        string inputPath,
        string outputDirectory,
        HlsSettings? settings,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        settings ??= new HlsSettings();
        ArgumentOutOfRangeException.ThrowIfLessThan(settings.SegmentSeconds, 1);
        if (outputDirectory.Contains('%', StringComparison.Ordinal))
        {
            // ffmpeg's HLS muxer expands %v and %d in these paths; a literal % would corrupt them.
            throw new ArgumentException("The HLS output directory must not contain '%'.", nameof(outputDirectory));
        }

        progress?.Report(new MediaProgress(0, "probe"));
        var probe = await _prober.ProbeAsync(inputPath, _limits, cancellationToken);
        var video = probe.Video ?? throw new MediaException("media.no_video", "The file has no video stream.");
        var renditions = HlsPlan.Renditions(video.DisplayWidth ?? 640, video.DisplayHeight ?? 360, settings);

        using var staged = new StagedDirectory(outputDirectory);
        var args = HlsPlan.Arguments(inputPath, staged.StagingPath, probe, renditions, settings);
        var withBytes = progress is null ? null : new DirectorySizeProgress(progress, staged.StagingPath);
        await _runner.RunAsync(args, probe.Duration, Stage, withBytes, cancellationToken);

        var result = await ReadResultAsync(staged.StagingPath, renditions, cancellationToken);
        staged.Commit();
        progress?.Report(new MediaProgress(100, Stage, TotalBytes: AvPaths.DirectorySize(staged.Destination)));
        return Relocate(result, staged.StagingPath, staged.Destination) with { Duration = probe.Duration, HasAudio = probe.HasAudio };
    }

    /// <summary>The master playlist ffmpeg wrote, checked against the plan: every rendition listed and every segment on disk.</summary>
    private static async Task<HlsResult> ReadResultAsync(string directory, IReadOnlyList<PlannedRendition> planned, CancellationToken ct)
    {
        var masterPath = Path.Combine(directory, HlsPlan.MasterName);
        if (!File.Exists(masterPath))
        {
            throw new MediaException("media.hls_incomplete", "ffmpeg finished without writing the master playlist.");
        }

        var variants = HlsPlaylistParser.ParseMaster(await File.ReadAllTextAsync(masterPath, ct));
        var renditions = new List<HlsRendition>(planned.Count);
        foreach (var plan in planned)
        {
            var uri = $"{plan.Name}/{HlsPlan.PlaylistName}";
            var variant = variants.FirstOrDefault(v => v.Uri == uri)
                ?? throw new MediaException("media.hls_incomplete", $"The master playlist does not list {uri}.");
            var playlistPath = Path.Combine(directory, plan.Name, HlsPlan.PlaylistName);
            var segments = HlsPlaylistParser.ParseSegments(await File.ReadAllTextAsync(playlistPath, ct));
            var missing = segments.FirstOrDefault(s => !File.Exists(Path.Combine(directory, plan.Name, s)));
            if (segments.Count == 0 || missing is not null)
            {
                throw new MediaException("media.hls_incomplete", $"Rendition {plan.Name} has no segments or misses {missing}.");
            }

            renditions.Add(new HlsRendition(
                plan.Name, variant.Width ?? plan.Width, variant.Height ?? plan.Height, variant.Bandwidth, playlistPath, segments.Count));
        }

        return new HlsResult(masterPath, renditions, null, false);
    }

    private static HlsResult Relocate(HlsResult staged, string from, string to)
    {
        string Move(string path) => Path.Combine(to, Path.GetRelativePath(from, path));
        return staged with
        {
            MasterPlaylistPath = Move(staged.MasterPlaylistPath),
            Renditions = staged.Renditions.Select(r => r with { PlaylistPath = Move(r.PlaylistPath) }).ToList(),
        };
    }

    /// <summary>The HLS muxer prints total_size=N/A, so bytes written are counted on disk instead.</summary>
    private sealed class DirectorySizeProgress(IProgress<MediaProgress> inner, string directory) : IProgress<MediaProgress>
    {
        public void Report(MediaProgress value) =>
            inner.Report(value.TotalBytes is null ? value with { TotalBytes = AvPaths.DirectorySize(directory) } : value);
    }
}
