using System.Net;
using System.Text;

namespace Kiln.Fetch;

/// <summary>Parsing and redaction of the URL a client asks Kiln to fetch.</summary>
internal static class FetchUrl
{
    private const int MaxLength = 8192;

    // Query parameters whose names look like credentials (signed URLs, API tokens). Matched as substrings of the lower-cased name.
    private static readonly string[] SecretNames =
        ["token", "key", "secret", "signature", "sig", "password", "passwd", "pwd", "auth", "credential", "session", "code", "x-amz-", "x-goog-"];

    /// <summary>Parses an absolute http(s) URL; returns null and an error message otherwise.</summary>
    public static Uri? Parse(string? value, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(value) || value.Length > MaxLength)
        {
            error = $"url must be an absolute http or https URL of at most {MaxLength} characters.";
            return null;
        }

        if (!Uri.TryCreate(value.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.Host.Length == 0)
        {
            error = "url must be an absolute http or https URL.";
            return null;
        }

        return uri;
    }

    /// <summary>
    /// The URL without user info and with secret-looking query values replaced by <c>REDACTED</c>: what is stored as
    /// the asset's <c>sourceUrl</c> and written to logs.
    /// </summary>
    public static string Redact(Uri uri)
    {
        var builder = new UriBuilder(uri) { UserName = "", Password = "", Fragment = "" };
        if (uri.Query.Length > 1)
        {
            var query = new StringBuilder();
            foreach (var pair in uri.Query[1..].Split('&'))
            {
                var eq = pair.IndexOf('=');
                var name = eq < 0 ? pair : pair[..eq];
                query.Append(query.Length > 0 ? "&" : "").Append(eq >= 0 && IsSecret(name) ? name + "=REDACTED" : pair);
            }

            builder.Query = query.ToString();
        }

        return builder.Uri.AbsoluteUri;
    }

    /// <summary>
    /// The values of secret-looking query parameters, as written and decoded: tools echo parts of the URL (yt-dlp
    /// makes an id of its last segment and query), so their output is scrubbed of these, not only of the whole URL.
    /// </summary>
    public static IEnumerable<string> SecretValues(Uri uri)
    {
        if (uri.Query.Length <= 1)
        {
            yield break;
        }

        foreach (var pair in uri.Query[1..].Split('&'))
        {
            var eq = pair.IndexOf('=');
            if (eq >= 0 && eq < pair.Length - 1 && IsSecret(pair[..eq]))
            {
                yield return pair[(eq + 1)..];
                yield return WebUtility.UrlDecode(pair[(eq + 1)..]);
            }
        }
    }

    /// <summary>The URL without user info: Kiln never sends credentials embedded in a URL.</summary>
    public static Uri WithoutUserInfo(Uri uri) =>
        uri.UserInfo.Length == 0 ? uri : new UriBuilder(uri) { UserName = "", Password = "" }.Uri;

    private static bool IsSecret(string name)
    {
        var lower = WebUtility.UrlDecode(name).ToLowerInvariant();
        return SecretNames.Any(lower.Contains);
    }

    /// <summary>A file name from the URL's last path segment, for the asset's original name.</summary>
    public static string FileName(Uri uri)
    {
        var last = WebUtility.UrlDecode(uri.Segments.LastOrDefault()?.Trim('/') ?? "");
        return last.Length > 0 ? last : uri.Host;
    }
}
