using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Media.Transcription;

/// <summary>
/// Parses what <c>pocketsphinx_continuous -time yes</c> (pocketsphinx 0.8, Debian) prints on stdout: per utterance a
/// hypothesis line, then one line per token, <c>word start end confidence</c>. Fillers (<c>&lt;s&gt;</c>,
/// <c>&lt;sil&gt;</c>, <c>[NOISE]</c>, <c>++BREATH++</c>) are dropped and alternate pronunciations (<c>the(2)</c>) lose
/// their suffix.
/// </summary>
public static partial class PocketsphinxOutput
{
    public static IReadOnlyList<RecognizedWord> ParseWords(string stdout)
    {
        var words = new List<RecognizedWord>();
        foreach (var raw in stdout.Split('\n'))
        {
            var m = TokenLine().Match(raw.Trim());
            if (!m.Success)
            {
                continue;
            }

            var token = m.Groups["w"].Value;
            if (token.StartsWith('<') || token.StartsWith('[') || token.StartsWith("++", StringComparison.Ordinal))
            {
                continue;
            }

            var start = double.Parse(m.Groups["s"].Value, CultureInfo.InvariantCulture);
            var end = double.Parse(m.Groups["e"].Value, CultureInfo.InvariantCulture);
            words.Add(new RecognizedWord(Alternate().Replace(token, ""), start, Math.Max(start, end)));
        }

        return words;
    }

    [GeneratedRegex(@"^(?<w>\S+) (?<s>\d+(?:\.\d+)?) (?<e>\d+(?:\.\d+)?) (?<c>-?\d+(?:\.\d+)?(?:e-?\d+)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex TokenLine();

    [GeneratedRegex(@"\(\d+\)$", RegexOptions.CultureInvariant)]
    private static partial Regex Alternate();
}
