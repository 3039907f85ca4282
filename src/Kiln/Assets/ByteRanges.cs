using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.Net.Http.Headers;

namespace Kiln.Assets;

/// <summary>What to do with a request's Range header for a file of known length.</summary>
internal abstract record RangePlan
{
    /// <summary>No range, one satisfiable range, a condition to evaluate: the framework's file result handles it.</summary>
    public sealed record Framework : RangePlan;

    /// <summary>None of the ranges overlaps the file: 416.</summary>
    public sealed record Unsatisfiable : RangePlan;

    /// <summary>Several ranges to serve as multipart/byteranges (or one, once overlapping ones are merged).</summary>
    public sealed record Serve(IReadOnlyList<(long From, long To)> Ranges) : RangePlan;
}

/// <summary>
/// Multi-range requests (RFC 9110 §14.2). The framework's file results answer them with the whole file; a player or
/// download manager that asks for several ranges gets exactly those here. Everything else (single ranges,
/// If-None-Match, If-Range, If-Match) stays with the framework's file result, which implements them.
/// </summary>
internal static class ByteRanges
{
    /// <summary>More ranges than this in one request is not a real client; it gets the whole file.</summary>
    public const int MaxRanges = 16;

    public static RangePlan Plan(HttpRequest request, long length, EntityTagHeaderValue etag)
    {
        var headers = request.GetTypedHeaders();
        var raw = request.Headers.Range;
        if (raw.Count == 1 && RangeHeaderValue.TryParse(raw[0], out var other)
            && !other.Unit.Equals("bytes", StringComparison.OrdinalIgnoreCase))
        {
            // RFC 9110 §14.2: a range unit the server does not know is ignored. The framework's file result reads
            // "items=0-9" as bytes 0-9 (206), so the header is dropped before it looks.
            request.Headers.Remove(HeaderNames.Range);
            return new RangePlan.Framework();
        }

        if (raw.Count != 1 || !RangeHeaderValue.TryParse(raw[0], out var range) || range.Ranges.Count == 0)
        {
            return new RangePlan.Framework();
        }

        // Conditional requests: 304 and 412 are the framework's to answer, and a failed If-Range means the whole file.
        if (headers.IfNoneMatch.Count > 0 || headers.IfMatch.Count > 0 || headers.IfUnmodifiedSince is not null
            || (headers.IfRange is { } ifRange && (ifRange.EntityTag is null || !ifRange.EntityTag.Compare(etag, useStrongComparison: true))))
        {
            return new RangePlan.Framework();
        }

        if (range.Ranges.Count > MaxRanges)
        {
            return new RangePlan.Framework();
        }

        var resolved = new List<(long From, long To)>();
        foreach (var item in range.Ranges)
        {
            if (item.From is { } from)
            {
                if (from < length)
                {
                    resolved.Add((from, Math.Min(item.To ?? length - 1, length - 1)));
                }
            }
            else if (item.To is > 0 and var suffix && length > 0)
            {
                resolved.Add((Math.Max(0, length - suffix), length - 1));
            }
        }

        if (resolved.Count == 0)
        {
            // Answered here even for one range: the framework's 416 has no body, and every error carries a problem.
            return new RangePlan.Unsatisfiable();
        }

        if (range.Ranges.Count == 1)
        {
            return new RangePlan.Framework();
        }

        // Overlapping or adjacent ranges are merged, so a request cannot make us send the same bytes many times.
        resolved.Sort((a, b) => a.From.CompareTo(b.From));
        var merged = new List<(long From, long To)> { resolved[0] };
        foreach (var (from, to) in resolved.Skip(1))
        {
            var last = merged[^1];
            if (from <= last.To + 1)
            {
                merged[^1] = (last.From, Math.Max(last.To, to));
            }
            else
            {
                merged.Add((from, to));
            }
        }

        return new RangePlan.Serve(merged);
    }
}

/// <summary>A 206 answer with the planned ranges: one range as is, several as multipart/byteranges.</summary>
internal sealed class ByteRangesResult(
    string path, string contentType, long length, IReadOnlyList<(long From, long To)> ranges, EntityTagHeaderValue etag, DateTimeOffset lastModified, string? contentDisposition)
    : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status206PartialContent;
        response.Headers.AcceptRanges = "bytes";
        response.Headers.ETag = etag.ToString();
        response.Headers.LastModified = HeaderUtilities.FormatDate(lastModified);
        if (contentDisposition is not null)
        {
            response.Headers.ContentDisposition = contentDisposition;
        }

        var boundary = Guid.NewGuid().ToString("N");
        var parts = ranges.Select(r => (r.From, r.To, Header: ranges.Count == 1 ? [] : Encoding.ASCII.GetBytes(
            $"\r\n--{boundary}\r\nContent-Type: {contentType}\r\nContent-Range: {ContentRange(r.From, r.To)}\r\n\r\n"))).ToList();
        var tail = ranges.Count == 1 ? [] : Encoding.ASCII.GetBytes($"\r\n--{boundary}--\r\n");
        if (ranges.Count == 1)
        {
            response.ContentType = contentType;
            response.Headers.ContentRange = ContentRange(ranges[0].From, ranges[0].To);
        }
        else
        {
            response.ContentType = "multipart/byteranges; boundary=" + boundary;
        }

        response.ContentLength = parts.Sum(p => p.Header.Length + p.To - p.From + 1) + tail.Length;
        if (HttpMethods.IsHead(httpContext.Request.Method))
        {
            return;
        }

        var ct = httpContext.RequestAborted;
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous);
            foreach (var (from, to, header) in parts)
            {
                await response.Body.WriteAsync(header, ct);
                file.Position = from;
                var left = to - from + 1;
                while (left > 0)
                {
                    var read = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct);
                    if (read == 0)
                    {
                        throw new IOException($"{path} is shorter than expected; it changed while being served.");
                    }

                    await response.Body.WriteAsync(buffer.AsMemory(0, read), ct);
                    left -= read;
                }
            }

            await response.Body.WriteAsync(tail, ct);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private string ContentRange(long from, long to) =>
        string.Create(CultureInfo.InvariantCulture, $"bytes {from}-{to}/{length}");
}
