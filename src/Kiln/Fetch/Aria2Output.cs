using System.Globalization;
using System.Text.RegularExpressions;

namespace Kiln.Fetch;

/// <summary>
/// Parses aria2c's console readout (<c>--human-readable=false</c>, printed on every summary when stdout is not a
/// terminal): <c>[#gid 720896B/30000000B(2%) CN:1 DL:630896B ETA:46s]</c>.
/// </summary>
internal static partial class Aria2Output
{
    /// <summary>Bytes done, total (null while unknown), connections, speed in B/s and ETA in seconds of one readout line.</summary>
    public static (long Done, long? Total, int Connections, double Speed, double? EtaSeconds)? Parse(string line)
    {
        var m = Readout().Match(line);
        if (!m.Success)
        {
            return null;
        }

        var total = long.Parse(m.Groups["total"].ValueSpan, CultureInfo.InvariantCulture);
        return (
            long.Parse(m.Groups["done"].ValueSpan, CultureInfo.InvariantCulture),
            total > 0 ? total : null,
            m.Groups["cn"].Success ? int.Parse(m.Groups["cn"].ValueSpan, CultureInfo.InvariantCulture) : 0,
            m.Groups["dl"].Success ? double.Parse(m.Groups["dl"].ValueSpan, CultureInfo.InvariantCulture) : 0,
            m.Groups["eta"].Success ? Eta(m.Groups["eta"].Value) : null);
    }

    /// <summary>aria2's ETA: <c>46s</c>, <c>4m40s</c>, <c>1h2m3s</c>.</summary>
    private static double? Eta(string text)
    {
        double seconds = 0;
        foreach (Match part in EtaPart().Matches(text))
        {
            var n = double.Parse(part.Groups[1].ValueSpan, CultureInfo.InvariantCulture);
            seconds += part.Groups[2].Value switch { "h" => n * 3600, "m" => n * 60, _ => n };
        }

        return seconds;
    }

    [GeneratedRegex(@"^\[#\w+ (?<done>\d+)B/(?<total>\d+)B(?:\(\d+%\))?(?: CN:(?<cn>\d+))?(?: DL:(?<dl>\d+)B)?(?: ETA:(?<eta>[0-9hms]+))?\]$")]
    private static partial Regex Readout();

    [GeneratedRegex(@"(\d+)([hms])")]
    private static partial Regex EtaPart();
}
