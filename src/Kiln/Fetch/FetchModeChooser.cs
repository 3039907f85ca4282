using System.Net.Http.Headers;
using System.Text;
using Kiln.Media;
using Kiln.Media.Detection;

namespace Kiln.Fetch;

/// <summary>
/// <c>mode: auto</c>: asks the URL for its first bytes (a ranged GET through the guarded client: HEAD is too often
/// wrong or refused) and picks the direct downloader when they are media, yt-dlp when they are a web page or a
/// stream manifest (HLS, DASH). The choice is kept in the fetch directory, so a resumed job keeps its downloader.
/// </summary>
internal sealed class FetchModeChooser(DirectDownloader direct)
{
    private const string ChoiceName = "mode";
    private static readonly string[] ManifestTypes =
        ["text/html", "application/xhtml+xml", "application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl", "application/dash+xml"];

    public async Task<string> ChooseAsync(Uri url, string mode, string directory, CancellationToken ct)
    {
        if (mode != "auto")
        {
            return mode;
        }

        var choicePath = Path.Combine(directory, ChoiceName);
        if (File.Exists(choicePath))
        {
            return (await File.ReadAllTextAsync(choicePath, ct)).Trim();
        }

        var (contentType, head) = await direct.HeadAsync(url, ContentSniffer.HeaderLength, ct);
        var chosen = Choose(contentType, head);
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(choicePath, chosen, ct);
        return chosen;
    }

    /// <summary>direct for media bytes and for other binary files; ytdlp for pages and manifests (by type or by their text).</summary>
    public static string Choose(MediaTypeHeaderValue? contentType, ReadOnlySpan<byte> head)
    {
        if (ContentSniffer.Sniff(head).Kind != MediaKind.Other)
        {
            return "direct";
        }

        if (contentType?.MediaType is { } type && ManifestTypes.Contains(type, StringComparer.OrdinalIgnoreCase))
        {
            return "ytdlp";
        }

        var text = Encoding.UTF8.GetString(head).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        return text.StartsWith("#EXTM3U", StringComparison.Ordinal) || text.StartsWith('<') ? "ytdlp" : "direct";
    }
}
