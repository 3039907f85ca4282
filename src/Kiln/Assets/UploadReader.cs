using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Media.Detection;
using Kiln.Storage;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Kiln.Assets;

/// <summary>A file streamed to a temporary path, with what its first bytes said it is.</summary>
internal sealed record UploadedFile(string TempPath, string FileName, long Size, SniffResult Sniffed);

internal sealed record UploadForm(List<UploadedFile> Files, JsonObject? Settings, string? Category, IReadOnlyList<string> Tags);

/// <summary>Why an upload was refused; becomes a problem response.</summary>
internal sealed class UploadRejectedException(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;
}

/// <summary>
/// Reads a multipart upload section by section, streaming each file to disk (never buffering it whole), counting
/// bytes against the limit as they arrive and sniffing the first bytes for the real format.
/// </summary>
internal static class UploadReader
{
    private const int BufferSize = 128 * 1024;
    private const int ReaderBufferSize = 64 * 1024;

    public static async Task<UploadForm> ReadAsync(HttpRequest request, BlobStore blobs, UploadOptions limits, CancellationToken ct)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 and <= 200 } boundary)
        {
            throw new UploadRejectedException(StatusCodes.Status415UnsupportedMediaType, "upload.not_multipart", "Send files as multipart/form-data.");
        }

        var files = new List<UploadedFile>();
        JsonObject? settings = null;
        string? category = null;
        var tags = new List<string>();
        // The reader's own buffer is 4 KiB by default, and a section's reads never return more than that buffer holds:
        // a 1 GiB file then took 262,144 reads and as many writes (docs/benchmarks.md, "Large uploads").
        var reader = new MultipartReader(boundary, request.Body, ReaderBufferSize) { HeadersLengthLimit = 16 * 1024 };
        try
        {
            while (await reader.ReadNextSectionAsync(ct) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition) || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase))
                {
                    throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.bad_part", "Every part needs a form-data Content-Disposition.");
                }

                var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
                // IsFileDisposition() is false for filename="": such a part is still a file (stored as "upload").
                if (disposition.IsFileDisposition() || disposition.Parameters.Any(p => p.Name.Equals("filename", StringComparison.OrdinalIgnoreCase)))
                {
                    if (files.Count >= limits.MaxFiles)
                    {
                        throw new UploadRejectedException(StatusCodes.Status413PayloadTooLarge, "upload.too_many_files", $"At most {limits.MaxFiles} files per upload.");
                    }

                    var fileName = FileNames.Sanitize(HeaderUtilities.RemoveQuotes(disposition.FileNameStar).Value
                        ?? HeaderUtilities.RemoveQuotes(disposition.FileName).Value);
                    files.Add(await StreamToDiskAsync(section.Body, blobs.NewUploadTempPath(), fileName, limits.MaxFileBytes, ct));
                    continue;
                }

                var value = await ReadFieldAsync(section.Body, limits.MaxSettingsBytes, name, ct);
                switch (name)
                {
                    case "settings":
                        settings = ParseSettings(value);
                        break;
                    case "category":
                        category = FileNames.ValidateToken(value, "category");
                        break;
                    case "tags":
                        tags.AddRange(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => FileNames.ValidateToken(t, "tags")));
                        break;
                    default:
                        throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.unknown_field", $"Unknown form field '{name}'; expected files, settings, category or tags.");
                }
            }
        }
        catch
        {
            foreach (var file in files)
            {
                File.Delete(file.TempPath);
            }

            throw;
        }

        if (files.Count == 0)
        {
            throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.no_files", "The upload contains no file parts.");
        }

        return new UploadForm(files, settings, category, tags.Distinct(StringComparer.Ordinal).Take(50).ToList());
    }

    public static JsonObject ParseSettings(string value)
    {
        try
        {
            return JsonNode.Parse(value) as JsonObject
                ?? throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.bad_settings", "settings must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.bad_settings", "settings is not valid JSON: " + e.Message);
        }
    }

    /// <summary>What a file's first bytes say it is: the same detection a multipart upload gets as it streams.</summary>
    public static async Task<SniffResult> SniffAsync(Stream file, CancellationToken ct)
    {
        var header = new byte[ContentSniffer.HeaderLength];
        var length = await file.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, ct);
        return ContentSniffer.Sniff(header.AsSpan(0, length));
    }

    private static async Task<UploadedFile> StreamToDiskAsync(Stream body, string tempPath, string fileName, long maxBytes, CancellationToken ct)
    {
        var buffer = new byte[BufferSize];
        var header = new byte[ContentSniffer.HeaderLength];
        var headerLength = 0;
        long total = 0;
        try
        {
            await using (var file = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                int read;
                // Whole buffers, not whatever one read returned: one write per 128 KiB.
                while ((read = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct)) > 0)
                {
                    total += read;
                    if (total > maxBytes)
                    {
                        throw new UploadRejectedException(StatusCodes.Status413PayloadTooLarge, "upload.too_large", $"A file is larger than the limit of {maxBytes} bytes.");
                    }

                    if (headerLength < header.Length)
                    {
                        var take = Math.Min(read, header.Length - headerLength);
                        Array.Copy(buffer, 0, header, headerLength, take);
                        headerLength += take;
                    }

                    await file.WriteAsync(buffer.AsMemory(0, read), ct);
                }

                await file.FlushAsync(ct);
            }

            if (total == 0)
            {
                throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.empty_file", $"File '{fileName}' is empty.");
            }

            return new UploadedFile(tempPath, fileName, total, ContentSniffer.Sniff(header.AsSpan(0, headerLength)));
        }
        catch
        {
            File.Delete(tempPath);
            throw;
        }
    }

    private static async Task<string> ReadFieldAsync(Stream body, int maxBytes, string name, CancellationToken ct)
    {
        var buffer = new byte[maxBytes + 1];
        var length = 0;
        int read;
        while ((read = await body.ReadAsync(buffer.AsMemory(length), ct)) > 0)
        {
            length += read;
            if (length > maxBytes)
            {
                throw new UploadRejectedException(StatusCodes.Status413PayloadTooLarge, "upload.field_too_large", $"Form field '{name}' is larger than {maxBytes} bytes.");
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}

internal static class FileNames
{
    /// <summary>Keeps the last path segment, drops control and reserved characters, caps the length.</summary>
    public static string Sanitize(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return "upload";
        }

        var last = name.Replace('\\', '/').Split('/').LastOrDefault(s => s.Length > 0) ?? "upload";
        var sb = new StringBuilder(last.Length);
        foreach (var c in last)
        {
            if (!char.IsControl(c) && c is not ('"' or '<' or '>' or '|' or ':' or '*' or '?'))
            {
                sb.Append(c);
            }
        }

        var clean = sb.ToString().Trim().TrimStart('.');
        if (clean.Length == 0)
        {
            return "upload";
        }

        return clean.Length <= 200 ? clean : clean[..200];
    }

    /// <summary>Category and tag values: short tokens of letters, digits, '-', '_' and '.'.</summary>
    public static string ValidateToken(string value, string field)
    {
        var v = value.Trim();
        if (v.Length is 0 or > 64 || !v.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new UploadRejectedException(StatusCodes.Status400BadRequest, "upload.bad_" + field, $"{field} values must be 1-64 characters of letters, digits, '-', '_' or '.'.");
        }

        return v;
    }
}
