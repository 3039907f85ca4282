using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Kiln.Tests.Tus;

/// <summary>The few tus requests a test needs, spoken on the wire as a tus client does.</summary>
internal sealed class TusTestClient(HttpClient http)
{
    public const string ContentType = "application/offset+octet-stream";

    public HttpClient Http { get; } = http;

    public static string Metadata(params (string Key, string Value)[] pairs) =>
        string.Join(",", pairs.Select(p => p.Key + " " + Convert.ToBase64String(Encoding.UTF8.GetBytes(p.Value))));

    public async Task<HttpResponseMessage> SendCreateAsync(long? length, string? metadata = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/tus");
        request.Headers.Add("Tus-Resumable", "1.0.0");
        if (length is not null)
        {
            request.Headers.Add("Upload-Length", length.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (metadata is not null)
        {
            request.Headers.Add("Upload-Metadata", metadata);
        }

        return await Http.SendAsync(request);
    }

    /// <summary>Creates an upload and returns its Location (a path such as /api/tus/{id}).</summary>
    public async Task<string> CreateAsync(long length, string? metadata = null)
    {
        using var response = await SendCreateAsync(length, metadata);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new HttpRequestException($"create answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return response.Headers.Location!.OriginalString;
    }

    public async Task<HttpResponseMessage> HeadAsync(string location)
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, location);
        request.Headers.Add("Tus-Resumable", "1.0.0");
        return await Http.SendAsync(request);
    }

    public async Task<long> OffsetAsync(string location)
    {
        using var response = await HeadAsync(location);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return long.Parse(response.Headers.GetValues("Upload-Offset").Single(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task<HttpResponseMessage> PatchAsync(string location, long offset, ReadOnlyMemory<byte> bytes, string contentType = ContentType, string? version = "1.0.0", CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, location) { Content = new ReadOnlyMemoryContent(bytes) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Add("Upload-Offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (version is not null)
        {
            request.Headers.Add("Tus-Resumable", version);
        }

        return await Http.SendAsync(request, ct);
    }

    /// <summary>
    /// Resumes as tus-js-client does: ask where the upload stands, send the rest from there; a 409 or 423 (another
    /// request still finishing) means ask again. Returns the final response.
    /// </summary>
    public async Task<HttpResponseMessage> ResumeAsync(string location, byte[] source, int chunkSize)
    {
        while (true)
        {
            var (offset, length, response) = await Poll.UntilAsync(
                async () =>
                {
                    var offset = await OffsetAsync(location);
                    var length = (int)Math.Min(chunkSize, source.Length - offset);
                    var response = await PatchAsync(location, offset, source.AsMemory((int)offset, length));
                    if (response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.Locked)
                    {
                        response.Dispose();
                        return (offset, length, Response: (HttpResponseMessage?)null);
                    }

                    return (offset, length, Response: response);
                },
                sent => sent.Response is not null,
                "a PATCH that is not refused with 409/423 while another request finishes");

            Assert.Equal(HttpStatusCode.NoContent, response!.StatusCode);
            if (offset + length == source.Length)
            {
                return response;
            }

            response.Dispose();
        }
    }
}

/// <summary>
/// A request body that sends its first part, then stalls until the request is cancelled: a connection dropped
/// mid-upload. Its length is declared up front, so the server expects the rest.
/// </summary>
internal sealed class StallingContent(byte[] bytes, int sendBeforeStall) : HttpContent
{
    private readonly TaskCompletionSource _sent = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Sent => _sent.Task;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(bytes.AsMemory(0, sendBeforeStall), cancellationToken);
        await stream.FlushAsync(cancellationToken);
        _sent.TrySetResult();
        // Not a sleep: the stall lasts until the client gives up on the request, which is the dropped connection.
        await Task.Delay(Timeout.Infinite, cancellationToken);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = bytes.Length;
        return true;
    }
}
