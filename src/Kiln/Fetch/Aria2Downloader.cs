using System.Globalization;
using Kiln.Processing;
using Microsoft.Extensions.Options;

namespace Kiln.Fetch;

/// <summary>
/// Multi-connection direct downloads through aria2c (Debian <c>aria2</c>), used when Kiln:Fetch:Aria2Connections is
/// above 0. Every connection goes through the guarded <see cref="FetchProxy"/> (<c>--all-proxy</c>), which also counts
/// the bytes against MaxBytes; aria2c resumes by itself from its control file after a pause or retry.
/// </summary>
internal sealed class Aria2Downloader(FetchProxy proxy, IOptions<FetchOptions> options, ILogger<Aria2Downloader> logger)
{
    public const string SubDirectory = "aria2";
    private const string FileName = "download.part";
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(250);

    public async Task<DownloadResult> DownloadAsync(Uri url, string directory, IProgress<JobProgress> progress, CancellationToken ct)
    {
        var o = options.Value;
        var last = DateTime.MinValue;
        var run = await FetchTool.RunThroughProxyAsync(
            proxy, o, url, directory, SubDirectory, o.Aria2Path, (output, proxyUrl) => Arguments(url, output, proxyUrl, o), "aria2c", "Kiln:Fetch:Aria2Path", line =>
            {
                if (Aria2Output.Parse(line) is not { } p)
                {
                    return false;
                }

                if (DateTime.UtcNow - last >= ReportEvery)
                {
                    progress.Report(new JobProgress(p.Total is { } t ? 100.0 * p.Done / t : 0, "downloading", p.Speed, p.EtaSeconds, p.Total));
                    last = DateTime.UtcNow;
                }

                return true;
            }, progress, ct);
        var (exitCode, tool) = (run.ExitCode, run.Tool);

        var file = Path.Combine(run.OutputDirectory, FileName);
        if (exitCode != 0 || !File.Exists(file) || File.Exists(file + ".aria2"))
        {
            logger.LogWarning("aria2c for {Url} exited with {ExitCode}: {Output}", FetchUrl.Redact(url), exitCode, tool.Tail);

            // aria2c's exit codes: 3 resource not found, 24 authorization failed; the rest (timeouts, network) retry.
            var (code, retryable) = exitCode switch
            {
                3 => ("fetch.not_found", false),
                24 => ("fetch.forbidden", false),
                _ => ("fetch.aria2_failed", true),
            };
            throw new JobFailedException(code, string.Create(CultureInfo.InvariantCulture, $"aria2c exited with code {exitCode}: {tool.LastOutput(500)}"), retryable);
        }

        var size = new FileInfo(file).Length;
        progress.Report(new JobProgress(100, "finalizing", TotalBytes: size));
        return new DownloadResult(file, size, run.ProxiedBytes, false, null);
    }

    /// <summary>aria2c's arguments: no config file, the proxy for every protocol, bounded retries, the URL last.</summary>
    public static List<string> Arguments(Uri url, string outputDirectory, Uri proxyUrl, FetchOptions o)
    {
        var n = o.Aria2Connections.ToString(CultureInfo.InvariantCulture);
        return
        [
            "--no-conf=true", "--all-proxy=" + proxyUrl.AbsoluteUri, "--proxy-method=get",
            "-x", n, "-s", n, "--min-split-size=4M", "--continue=true", "--auto-file-renaming=false", "--allow-overwrite=false",
            "--file-allocation=none", "--max-tries=1", "--max-file-not-found=1", "--remote-time=false", "--follow-torrent=false", "--follow-metalink=false",
            "--connect-timeout=" + Math.Ceiling(o.ConnectTimeoutSeconds).ToString(CultureInfo.InvariantCulture),
            "--timeout=" + Math.Ceiling(o.IdleTimeoutSeconds).ToString(CultureInfo.InvariantCulture),
            "--enable-color=false", "--human-readable=false", "--summary-interval=1", "--console-log-level=warn", "--show-console-readout=true",
            "-d", outputDirectory, "-o", FileName, "--", url.AbsoluteUri,
        ];
    }
}
