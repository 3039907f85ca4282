using System.Text;
using System.Text.RegularExpressions;

namespace Kiln.Assets;

/// <summary>
/// Rewrites the references inside an HLS playlist served by Kiln so that a player can follow them.
/// </summary>
/// <remarks>
/// Why: ffmpeg writes relative references (<c>720p/index.m3u8</c>, <c>segment_001.ts</c>). A player resolves them
/// against the playlist's URL, which breaks twice. Against <c>/api/files/{id}/download</c> they point next to
/// <c>download</c> instead of into the derivative's directory. And players drop the query string, so the
/// signature of a signed URL does not reach the variant playlists and segments. Each relative reference becomes an
/// absolute <c>/api/files/{id}/content/{path}</c>, carrying the request's signature when it had one.
/// </remarks>
internal static partial class HlsPlaylist
{
    public const string Extension = ".m3u8";

    public const string ContentType = "application/vnd.apple.mpegurl";

    /// <param name="text">The playlist as stored.</param>
    /// <param name="fileId">The derivative whose directory holds the playlist.</param>
    /// <param name="directory">The playlist's directory relative to the derivative's ("" for the master).</param>
    /// <param name="signedQuery"><c>expires=…&amp;sig=…</c> to append, or null for a request made with a key.</param>
    public static string Rewrite(string text, Guid fileId, string directory, string? signedQuery)
    {
        var output = new StringBuilder(text.Length + 256);
        foreach (var line in text.Split('\n'))
        {
            var content = line.TrimEnd('\r');
            if (content.Length == 0)
            {
                output.Append(line).Append('\n');
                continue;
            }

            // Tags carry references in URI="…" attributes (EXT-X-MEDIA, EXT-X-MAP, EXT-X-KEY, …); other lines are one.
            var rewritten = content.StartsWith('#')
                ? UriAttribute().Replace(content, m => $"URI=\"{Reference(m.Groups[1].Value, fileId, directory, signedQuery)}\"")
                : Reference(content.Trim(), fileId, directory, signedQuery);
            output.Append(rewritten).Append('\n');
        }

        // Split leaves one empty piece after a final newline; the loop turned it into an extra one.
        output.Length--;
        return output.ToString();
    }

    private static string Reference(string reference, Guid fileId, string directory, string? signedQuery)
    {
        if (reference.Contains("://", StringComparison.Ordinal) || reference.StartsWith('/'))
        {
            return reference;
        }

        var (path, query) = reference.IndexOf('?', StringComparison.Ordinal) is var q and >= 0 ? (reference[..q], reference[q..]) : (reference, "");
        var segments = new List<string>(directory.Split('/', StringSplitOptions.RemoveEmptyEntries));
        foreach (var part in path.Split('/'))
        {
            if (part == "..")
            {
                // Leaving the derivative's directory stays impossible: the content endpoint refuses it anyway.
                if (segments.Count > 0)
                {
                    segments.RemoveAt(segments.Count - 1);
                }
            }
            else if (part is not ("." or ""))
            {
                segments.Add(part);
            }
        }

        var absolute = $"/api/files/{fileId}/content/{string.Join('/', segments)}{query}";
        return signedQuery is null ? absolute : absolute + (query.Length == 0 ? "?" : "&") + signedQuery;
    }

    [GeneratedRegex("URI=\"([^\"]*)\"")]
    private static partial Regex UriAttribute();
}
