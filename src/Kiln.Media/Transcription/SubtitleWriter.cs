using System.Globalization;
using System.Text;

namespace Kiln.Media.Transcription;

/// <summary>Writes segments as WebVTT, SubRip or plain text: one place for the cue formats, used by the API and HLS.</summary>
public static class SubtitleWriter
{
    public static string ToVtt(IReadOnlyList<TranscriptSegment> segments)
    {
        var sb = new StringBuilder("WEBVTT\n\n");
        var i = 0;
        foreach (var s in segments)
        {
            sb.Append(++i).Append('\n')
              .Append(Time(s.Start, '.')).Append(" --> ").Append(Time(End(s), '.')).Append('\n')
              .Append(CueText(s.Text).Replace("-->", "->", StringComparison.Ordinal)).Append("\n\n");
        }

        return sb.ToString();
    }

    public static string ToSrt(IReadOnlyList<TranscriptSegment> segments)
    {
        var sb = new StringBuilder();
        var i = 0;
        foreach (var s in segments)
        {
            sb.Append(++i).Append('\n')
              .Append(Time(s.Start, ',')).Append(" --> ").Append(Time(End(s), ',')).Append('\n')
              .Append(CueText(s.Text)).Append("\n\n");
        }

        return sb.ToString();
    }

    public static string ToText(string text) => text.EndsWith('\n') ? text : text + "\n";

    /// <summary>A cue needs a positive length and no blank line inside it, which would end the cue early.</summary>
    private static double End(TranscriptSegment s) => s.End > s.Start ? s.End : s.Start + 0.001;

    private static string CueText(string text)
    {
        var lines = text.Replace("\r", "", StringComparison.Ordinal).Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0);
        var joined = string.Join('\n', lines);
        return joined.Length == 0 ? "..." : joined;
    }

    private static string Time(double seconds, char fraction)
    {
        var ms = (long)Math.Round(Math.Max(0, seconds) * 1000);
        return string.Create(CultureInfo.InvariantCulture, $"{ms / 3_600_000:00}:{ms / 60_000 % 60:00}:{ms / 1000 % 60:00}{fraction}{ms % 1000:000}");
    }
}
