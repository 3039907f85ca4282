using System.Globalization;
using System.Text;

namespace Kiln.Tus;

/// <summary>Why a tus request was refused; becomes a problem response with a <c>tus.*</c> code.</summary>
internal sealed class TusRejectedException(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;
}

/// <summary>The tus 1.0 wire format: header names, values and the Upload-Metadata encoding.</summary>
internal static class TusProtocol
{
    public const string Version = "1.0.0";
    public const string Extensions = "creation,termination,expiration";
    public const string ContentType = "application/offset+octet-stream";

    public const string TusResumable = "Tus-Resumable";
    public const string TusVersion = "Tus-Version";
    public const string TusExtension = "Tus-Extension";
    public const string TusMaxSize = "Tus-Max-Size";
    public const string UploadOffset = "Upload-Offset";
    public const string UploadLength = "Upload-Length";
    public const string UploadMetadata = "Upload-Metadata";
    public const string UploadExpires = "Upload-Expires";
    public const string UploadDeferLength = "Upload-Defer-Length";

    /// <summary>Kiln's own: the asset a finished upload became.</summary>
    public const string AssetId = "Kiln-Asset-Id";

    /// <summary>Headers a browser page on another origin must be allowed to read.</summary>
    public static readonly string[] ExposedHeaders =
        ["Location", TusResumable, TusVersion, TusExtension, TusMaxSize, UploadOffset, UploadLength, UploadMetadata, UploadExpires, AssetId];

    /// <summary>A non-negative integer header (Upload-Length, Upload-Offset); null when absent.</summary>
    public static long? ReadLength(IHeaderDictionary headers, string name)
    {
        var value = headers[name].ToString();
        if (value.Length == 0)
        {
            return null;
        }

        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new TusRejectedException(StatusCodes.Status400BadRequest, "tus.bad_" + name.Replace("Upload-", "", StringComparison.Ordinal).ToLowerInvariant(), $"{name} must be a non-negative integer.");
    }

    /// <summary>
    /// Upload-Metadata: comma-separated pairs of a key and its base64 value (the value may be absent). Keys are ASCII
    /// without spaces or commas and must be unique.
    /// </summary>
    public static Dictionary<string, string> ParseMetadata(string header)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in header.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length is 0 or > 2 || !parts[0].All(c => c is > ' ' and < (char)127))
            {
                throw BadMetadata($"'{pair}' is not a key followed by a base64 value.");
            }

            string value;
            try
            {
                value = parts.Length == 2 ? new UTF8Encoding(false, true).GetString(Convert.FromBase64String(parts[1])) : "";
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw BadMetadata($"the value of '{parts[0]}' is not base64 of UTF-8 text.");
            }

            if (!result.TryAdd(parts[0], value))
            {
                throw BadMetadata($"'{parts[0]}' appears twice.");
            }
        }

        return result;
    }

    /// <summary>Encodes pairs as Upload-Metadata; pairs with a null value are left out.</summary>
    public static string FormatMetadata(params (string Key, string? Value)[] pairs) =>
        string.Join(",", pairs.Where(p => p.Value is not null).Select(p => p.Key + " " + Convert.ToBase64String(Encoding.UTF8.GetBytes(p.Value!))));

    /// <summary>HTTP date (RFC 9110 IMF-fixdate), as Upload-Expires wants it.</summary>
    public static string HttpDate(DateTimeOffset time) => time.ToUniversalTime().ToString("R", CultureInfo.InvariantCulture);

    private static TusRejectedException BadMetadata(string why) =>
        new(StatusCodes.Status400BadRequest, "tus.bad_metadata", "Upload-Metadata is malformed: " + why);
}
