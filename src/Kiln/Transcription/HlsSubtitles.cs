using System.Globalization;
using System.Text;

namespace Kiln.Transcription;

/// <summary>
/// The active transcript as a WebVTT subtitles rendition of an HLS output. Nothing is written next to the segments:
/// the master playlist gains the rendition when it is served and the subtitle playlist and VTT are made from the
/// active version on request, so an edit or activation shows up in players at once.
/// </summary>
internal static class HlsSubtitles
{
    public const string PlaylistPath = "subtitles/index.m3u8";
    public const string VttPath = "subtitles/active.vtt";
    private const string Group = "subs";

    /// <summary>Adds an EXT-X-MEDIA SUBTITLES rendition and points every variant at it; relative URI, rewritten later like the others.</summary>
    public static string AddToMaster(string master, string? language)
    {
        var lang = string.IsNullOrWhiteSpace(language) || language.Length > 3 ? "" : $",LANGUAGE=\"{language}\"";
        var media = $"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{Group}\",NAME=\"Transcript\"{lang},DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI=\"{PlaylistPath}\"";
        var output = new StringBuilder(master.Length + 256);
        var added = false;
        foreach (var raw in master.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.StartsWith("#EXT-X-STREAM-INF:", StringComparison.Ordinal))
            {
                if (!added)
                {
                    output.Append(media).Append('\n');
                    added = true;
                }

                line += $",SUBTITLES=\"{Group}\"";
            }

            output.Append(line).Append('\n');
        }

        output.Length--;
        return output.ToString();
    }

    /// <summary>A VOD media playlist whose one segment is the whole VTT file.</summary>
    public static string MediaPlaylist(double duration)
    {
        var d = Math.Max(1, duration);
        return string.Create(CultureInfo.InvariantCulture, $"""
            #EXTM3U
            #EXT-X-VERSION:3
            #EXT-X-TARGETDURATION:{(int)Math.Ceiling(d)}
            #EXT-X-MEDIA-SEQUENCE:0
            #EXT-X-PLAYLIST-TYPE:VOD
            #EXTINF:{d:0.###},
            active.vtt
            #EXT-X-ENDLIST

            """);
    }
}
