using System.Net.Http.Headers;
using System.Text;
using Kiln.Fetch;

namespace Kiln.Tests.Fetch;

/// <summary>The pure parts of the yt-dlp downloader: its output parser (on output captured from yt-dlp 2023.03), its
/// arguments, and auto mode's choice.</summary>
public sealed class YtDlpOutputTests
{
    // Captured: yt-dlp 2023.03.04 fetching a 4-segment HLS stream with Kiln's --progress-template.
    private const string Captured = """
        [generic] Extracting URL: http://127.0.0.1:18765/index.m3u8
        [generic] index: Downloading webpage
        [generic] index: Downloading m3u8 information
        [info] index: Downloading 1 format(s): 0
        [hlsnative] Downloading m3u8 manifest
        [hlsnative] Total fragments: 4
        [download] Destination: /tmp/s2f/out/media.mp4
        [kiln] downloading 1024 NA 160928.0 121271.94759430765 1 0 4
        [kiln] downloading 40232 NA 160928.0 1865928.4406258638 0 1 4
        [kiln] downloading 41256 NA 154912.0 27565.945663545284 0 1 4
        [kiln] finished 130660 130660 NA 3778693.9388130815 NA NA NA
        [FixupM3u8] Fixing MPEG-TS in MP4 container of "/tmp/s2f/out/media.mp4"
        [Merger] Merging formats into "/tmp/x/media.mkv"
        WARNING: something yt-dlp says
        """;

    [Fact]
    public void Captured_output_yields_the_stages_in_order_and_the_progress_figures()
    {
        var parsed = Captured.Split('\n').Select(l => YtDlpOutput.Parse(l.TrimEnd('\r'))).ToList();

        Assert.Equal(
            ["resolving", "resolving", "resolving", "resolving", "downloading", "downloading", "downloading", "downloading", "downloading", "downloading", "downloading", "finalizing", "merging"],
            parsed.Where(p => p is not null).Select(p => p!.Value.Stage).ToArray());
        Assert.Null(parsed[^1]);

        var first = parsed[7]!.Value;
        Assert.Equal(1024, first.Downloaded);
        Assert.Equal(160928, first.Total);
        Assert.Equal(121271.94759430765, first.Speed!.Value, 6);
        Assert.Equal(1, first.EtaSeconds);
        Assert.Equal(100.0 * 1024 / 160928, first.Percent!.Value, 6);

        var estimateShrank = parsed[9]!.Value;
        Assert.Equal(154912, estimateShrank.Total);
        Assert.Equal(0, estimateShrank.EtaSeconds);

        var finished = parsed[10]!.Value;
        Assert.Equal(130660, finished.Total);
        Assert.Equal(100, finished.Percent);
        Assert.Null(finished.EtaSeconds);
    }

    [Theory]
    [InlineData("[kiln] downloading NA NA NA NA NA")]
    [InlineData("[kiln] downloading 10 NA NA NaN NA")]
    public void Unknown_figures_are_null_not_zero(string line)
    {
        var parsed = YtDlpOutput.Parse(line)!.Value;

        Assert.Equal("downloading", parsed.Stage);
        Assert.Null(parsed.Total);
        Assert.Null(parsed.Speed);
        Assert.Null(parsed.Percent);
    }

    [Theory]
    [InlineData("ERROR: [generic] Unable to download webpage: HTTP Error 404: Not Found", "fetch.not_found", false)]
    [InlineData("ERROR: Unsupported URL: http://example.com/page", "fetch.not_media", false)]
    [InlineData("[download] File is larger than max-filesize (1000 bytes > 10 bytes). Aborting.", "fetch.too_large", false)]
    [InlineData("ERROR: [generic] index: Requested format is not available", "fetch.no_format", false)]
    public void Failures_are_classified_like_the_direct_downloaders(string output, string code, bool retryable)
    {
        Assert.Equal((code, retryable), YtDlpOutput.Classify(output));
    }

    [Fact]
    public void The_arguments_are_hardened_bounded_proxied_and_end_with_the_url_after_a_double_dash()
    {
        var options = new FetchOptions { MaxBytes = 1000, MaxHeight = 720 };
        var url = new Uri("http://example.com/watch?v=--exec=rm");

        var args = YtDlpDownloader.Arguments(url, "/data/tmp/fetch/j/ytdlp", new Uri("http://kiln:s@127.0.0.1:9/"), options);

        Assert.Equal(["--", url.AbsoluteUri], args[^2..]);
        Assert.Equal(1, args.Count(a => a == "--"));
        Assert.Contains("--ignore-config", args);
        Assert.Contains("--no-cache-dir", args);
        Assert.Contains("--no-exec", args);
        Assert.Contains("--abort-on-unavailable-fragments", args);
        Assert.DoesNotContain("--exec", args);
        Assert.Equal("native", args[args.IndexOf("--downloader") + 1]);
        Assert.Equal("http://kiln:s@127.0.0.1:9/", args[args.IndexOf("--proxy") + 1]);
        Assert.Equal("1000", args[args.IndexOf("--max-filesize") + 1]);
        Assert.Equal("bv*[height<=?720][filesize<?1000]+ba[filesize<?1000]/b[height<=?720][filesize<?1000]", args[args.IndexOf("-f") + 1]);
        Assert.Equal(YtDlpOutput.ProgressTemplate, args[args.IndexOf("--progress-template") + 1]);
    }

    [Theory]
    [InlineData("image/jpeg", new byte[] { 0xFF, 0xD8, 0xFF, 0xE0 }, "direct")]
    [InlineData("text/html", new byte[] { 0xFF, 0xD8, 0xFF, 0xE0 }, "direct")]
    [InlineData("application/zip", new byte[] { 0x50, 0x4B, 0x03, 0x04 }, "direct")]
    [InlineData("application/vnd.apple.mpegurl", new byte[] { 0x23 }, "ytdlp")]
    [InlineData("text/html", new byte[] { 0x20 }, "ytdlp")]
    public void Auto_chooses_by_the_bytes_first_then_by_the_type(string type, byte[] head, string expected)
    {
        Assert.Equal(expected, FetchModeChooser.Choose(MediaTypeHeaderValue.Parse(type), head));
    }

    [Theory]
    [InlineData("#EXTM3U\n#EXT-X-VERSION:3\n", "ytdlp")]
    [InlineData("\uFEFF  <!doctype html><html>", "ytdlp")]
    [InlineData("<?xml version=\"1.0\"?><MPD>", "ytdlp")]
    [InlineData("just some text", "direct")]
    public void Auto_recognises_manifests_and_pages_served_as_octet_stream(string text, string expected)
    {
        Assert.Equal(expected, FetchModeChooser.Choose(MediaTypeHeaderValue.Parse("application/octet-stream"), Encoding.UTF8.GetBytes(text)));
    }
}
