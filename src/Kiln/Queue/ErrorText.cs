using System.Text.RegularExpressions;

namespace Kiln.Queue;

/// <summary>
/// What of a failure's message a client may see. libvips, ffmpeg and .NET put absolute paths into their messages
/// (the original's place in the data directory, a worker's scratch directory): those stay in the worker's log,
/// and the stored and broadcast message names only the file.
/// </summary>
internal static partial class ErrorText
{
    /// <summary>Replaces every absolute path (with or without ffmpeg's <c>file:</c> prefix) by its last segment.</summary>
    public static string WithoutPaths(string message) =>
        AbsolutePath().Replace(message, m => m.Groups["name"].Value is { Length: > 0 } name ? name : "<path>");

    // A '/' that starts a token (not the inside of a URL: "http://host/x" is left alone), then at least one
    // directory segment. Segments stop at whitespace, quotes and the punctuation tools put around paths.
    [GeneratedRegex("""(?<![\w.:/~-])(?:file:)?/(?:[^\s/'"`:,;()\[\]<>]+/)+(?<name>[^\s/'"`:,;()\[\]<>]*)""")]
    private static partial Regex AbsolutePath();
}
