namespace Kiln.Media.Transcription;

/// <summary>One timed piece of a transcript; times in seconds from the start of the media.</summary>
public sealed record TranscriptSegment(double Start, double End, string Text);

/// <summary>A recognised word with its times, as the local recogniser reports them.</summary>
public sealed record RecognizedWord(string Word, double Start, double End);

/// <summary>What a speech recogniser returns for one file or chunk.</summary>
public sealed record TranscriptText(string Text, IReadOnlyList<TranscriptSegment> Segments, string? Language);

/// <summary>Pure helpers that shape segments: grouping words and shifting chunk times back onto the media's clock.</summary>
public static class Segments
{
    /// <summary>
    /// Groups words into caption-sized segments: a new one starts after a pause of <paramref name="maxGap"/> seconds
    /// or when the current one reaches <paramref name="maxWords"/> words, so subtitles stay readable.
    /// </summary>
    public static IReadOnlyList<TranscriptSegment> FromWords(IEnumerable<RecognizedWord> words, double maxGap = 0.6, int maxWords = 12)
    {
        var result = new List<TranscriptSegment>();
        var current = new List<RecognizedWord>();
        foreach (var w in words)
        {
            if (current.Count > 0 && (w.Start - current[^1].End > maxGap || current.Count >= maxWords))
            {
                result.Add(Close(current));
                current.Clear();
            }

            current.Add(w);
        }

        if (current.Count > 0)
        {
            result.Add(Close(current));
        }

        return result;
    }

    /// <summary>Segments of chunk <c>i</c> start at its offset; clamps each inside [0, duration] and keeps them ordered.</summary>
    public static IReadOnlyList<TranscriptSegment> Stitch(IEnumerable<(double Offset, IReadOnlyList<TranscriptSegment> Segments)> chunks, double? duration)
    {
        var result = new List<TranscriptSegment>();
        var last = 0.0;
        foreach (var (offset, segments) in chunks)
        {
            foreach (var s in segments)
            {
                var start = Math.Max(last, s.Start + offset);
                var end = Math.Max(start, s.End + offset);
                if (duration is { } d)
                {
                    start = Math.Min(start, d);
                    end = Math.Min(end, d);
                }

                if (s.Text.Trim() is { Length: > 0 } text)
                {
                    result.Add(new TranscriptSegment(Math.Round(start, 3), Math.Round(end, 3), text));
                    last = start;
                }
            }
        }

        return result;
    }

    public static string JoinText(IEnumerable<TranscriptSegment> segments) =>
        string.Join(' ', segments.Select(s => s.Text.Trim()).Where(t => t.Length > 0));

    private static TranscriptSegment Close(List<RecognizedWord> words) =>
        new(words[0].Start, words[^1].End, string.Join(' ', words.Select(w => w.Word)));
}
