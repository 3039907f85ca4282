using System.Diagnostics;
using System.Globalization;
using Kiln.Processing;
using Microsoft.Extensions.Options;

namespace Kiln.Fetch;

/// <summary>
/// Page URLs and stream manifests through Debian's yt-dlp, hardened: no configuration, plugins or cache from the
/// machine, no <c>--exec</c>, no external downloader, a bounded format, and every connection through the guarded
/// <see cref="FetchProxy"/>. Its files live in the fetch directory, which outlives a pause or retry, so a rerun
/// continues (yt-dlp's own <c>--continue</c>, fragment state included).
/// </summary>
internal sealed class YtDlpDownloader(FetchProxy proxy, IOptions<FetchOptions> options, ILogger<YtDlpDownloader> logger)
{
    public const string SubDirectory = "ytdlp";
    private const string OutputStem = "media";
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(250);

    public async Task<DownloadResult> DownloadAsync(Uri url, string directory, IProgress<JobProgress> progress, CancellationToken ct)
    {
        var o = options.Value;
        var report = new ProgressLines(progress);
        var run = await FetchTool.RunThroughProxyAsync(
            proxy, o, url, directory, SubDirectory, o.YtDlpPath, (output, proxyUrl) => Arguments(url, output, proxyUrl, o), "yt-dlp", "Kiln:Fetch:YtDlpPath",
            report.Take, progress, ct);
        var (exitCode, tool) = (run.ExitCode, run.Tool);

        var file = exitCode == 0 ? FindOutput(run.OutputDirectory) : null;
        if (file is null)
        {
            logger.LogWarning("yt-dlp for {Url} exited with {ExitCode}: {Output}", FetchUrl.Redact(url), exitCode, tool.Tail);
            var (code, retryable) = YtDlpOutput.Classify(tool.Tail) ?? ("fetch.ytdlp_failed", true);
            throw new JobFailedException(code, string.Create(CultureInfo.InvariantCulture, $"yt-dlp exited with code {exitCode}: {tool.LastOutput(500)}"), retryable);
        }

        var size = new FileInfo(file).Length;
        progress.Report(new JobProgress(100, "finalizing", TotalBytes: size));
        return new DownloadResult(file, size, run.ProxiedBytes, false, null);
    }

    /// <summary>yt-dlp's arguments; every value is its own list item, the URL after <c>--</c>.</summary>
    public static List<string> Arguments(Uri url, string outputDirectory, Uri proxyUrl, FetchOptions o)
    {
        var maxBytes = o.MaxBytes.ToString(CultureInfo.InvariantCulture);
        var height = o.MaxHeight.ToString(CultureInfo.InvariantCulture);

        // Best video+audio, else the best single file, never over the height or size limits; "?" lets a stream that
        // does not state its height or size through (the proxy still counts its bytes against MaxBytes).
        var bounded = $"[height<=?{height}][filesize<?{maxBytes}]";
        List<string> args =
        [
            "--ignore-config", "--no-cache-dir", "--no-exec", "--no-playlist", "--playlist-items", "1",
            "--downloader", "native", "--proxy", proxyUrl.AbsoluteUri,

            // A skipped fragment would publish a broken file; Kiln's job retries are the outer loop.
            "--abort-on-unavailable-fragments", "--retries", "3", "--fragment-retries", "3",
            "--socket-timeout", o.IdleTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            "-f", $"bv*{bounded}+ba[filesize<?{maxBytes}]/b{bounded}", "--max-filesize", maxBytes,
            "--continue", "--no-mtime", "--no-colors", "--newline", "--progress", "--progress-template", YtDlpOutput.ProgressTemplate,
            "-P", outputDirectory, "-o", OutputStem + ".%(ext)s",
        ];
        if (o.FfmpegLocation.Length > 0)
        {
            args.AddRange(["--ffmpeg-location", o.FfmpegLocation]);
        }

        args.AddRange(["--", url.AbsoluteUri]);
        return args;
    }

    /// <summary>Turns parsed lines into reports: stage changes at once, progress at most every <see cref="ReportEvery"/>.</summary>
    private sealed class ProgressLines(IProgress<JobProgress> progress)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan _lastReport = TimeSpan.MinValue;
        private string _stage = "resolving";

        /// <summary>True when the line was a progress line (kept out of the error tail).</summary>
        public bool Take(string line)
        {
            if (YtDlpOutput.Parse(line) is not { } parsed)
            {
                return false;
            }

            var changed = parsed.Stage != _stage;
            _stage = parsed.Stage;
            if (changed || (parsed.Downloaded is not null && _clock.Elapsed - _lastReport >= ReportEvery))
            {
                progress.Report(new JobProgress(parsed.Percent ?? 0, _stage, parsed.Speed, parsed.EtaSeconds, parsed.Total));
                _lastReport = _clock.Elapsed;
            }

            return parsed.Downloaded is not null;
        }
    }

    /// <summary>The finished file: <c>media.&lt;ext&gt;</c>, not a partial (<c>.part</c>, <c>.ytdl</c>, fragment or temp file).</summary>
    private static string? FindOutput(string directory) =>
        Directory.EnumerateFiles(directory, OutputStem + ".*")
            .Where(f => Path.GetFileName(f).Count(c => c == '.') == 1 && !f.EndsWith(".part", StringComparison.Ordinal) && !f.EndsWith(".ytdl", StringComparison.Ordinal))
            .OrderByDescending(f => new FileInfo(f).Length)
            .FirstOrDefault();
}
