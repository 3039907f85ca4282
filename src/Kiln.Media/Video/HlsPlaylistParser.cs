using System.Globalization;

namespace Kiln.Media.Video;

/// <summary>A variant line of a master playlist.</summary>
internal sealed record HlsVariant(string Uri, long Bandwidth, int? Width, int? Height, string? Codecs);

/// <summary>Reads the playlists ffmpeg writes. Pure, tested on captured output.</summary>
internal static class HlsPlaylistParser
{
    /// <summary>Each <c>#EXT-X-STREAM-INF</c> with the URI on the next non-comment line.</summary>
    public static IReadOnlyList<HlsVariant> ParseMaster(string text)
    {
        var variants = new List<HlsVariant>();
        string? pending = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith("#EXT-X-STREAM-INF:", StringComparison.Ordinal))
            {
                pending = line["#EXT-X-STREAM-INF:".Length..];
            }
            else if (pending is not null && line.Length > 0 && !line.StartsWith('#'))
            {
                var attributes = ParseAttributes(pending);
                long.TryParse(attributes.GetValueOrDefault("BANDWIDTH"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var bandwidth);
                int? width = null, height = null;
                if (attributes.GetValueOrDefault("RESOLUTION") is { } resolution && resolution.Split('x') is [var w, var h]
                    && int.TryParse(w, NumberStyles.Integer, CultureInfo.InvariantCulture, out var wi)
                    && int.TryParse(h, NumberStyles.Integer, CultureInfo.InvariantCulture, out var hi))
                {
                    (width, height) = (wi, hi);
                }

                variants.Add(new HlsVariant(line, bandwidth, width, height, attributes.GetValueOrDefault("CODECS")));
                pending = null;
            }
        }

        return variants;
    }

    /// <summary>The segment URIs of a media playlist, in order.</summary>
    public static IReadOnlyList<string> ParseSegments(string text) =>
        text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();

    /// <summary>HLS attribute lists: <c>KEY=value</c> pairs separated by commas, where quoted values may contain commas.</summary>
    internal static Dictionary<string, string> ParseAttributes(string list)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        while (i < list.Length)
        {
            var eq = list.IndexOf('=', i);
            if (eq < 0)
            {
                break;
            }

            var key = list[i..eq].Trim();
            string value;
            if (eq + 1 < list.Length && list[eq + 1] == '"')
            {
                var close = list.IndexOf('"', eq + 2);
                close = close < 0 ? list.Length : close;
                value = list[(eq + 2)..close];
                i = list.IndexOf(',', Math.Min(close, list.Length - 1));
                i = i < 0 ? list.Length : i + 1;
            }
            else
            {
                var comma = list.IndexOf(',', eq + 1);
                comma = comma < 0 ? list.Length : comma;
                value = list[(eq + 1)..comma];
                i = comma + 1;
            }

            result[key] = value;
        }

        return result;
    }
}
