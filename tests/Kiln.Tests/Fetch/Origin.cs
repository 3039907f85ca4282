using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Kiln.Tests.Fetch;

/// <summary>
/// A Kestrel origin on loopback that the fetch tests download from: plain and Range-less files, a trickle, redirects,
/// errors, a lying Content-Length and a stream that stops. It records every request's path and Range header.
/// </summary>
public sealed class Origin : IAsyncDisposable
{
    private LoopbackServer _server = null!;

    private Origin(byte[] file) => File = file;

    public byte[] File { get; }

    public Uri BaseAddress => _server.BaseAddress;

    /// <summary>(path, Range header or null) of every request, in arrival order.</summary>
    public ConcurrentQueue<(string Path, string? Range)> Requests { get; } = new();

    /// <summary>Set to let a stalled or trickling response go on.</summary>
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Uri Url(string path) => new(BaseAddress, path);

    public int Hits(string path) => Requests.Count(r => r.Path == path);

    /// <summary>Files served under <c>/files/{name}</c> (HLS playlists and segments), added by a test after start.</summary>
    public ConcurrentDictionary<string, (byte[] Bytes, string ContentType)> Files { get; } = new();

    public static async Task<Origin> StartAsync(byte[] file, string bindAddress = "127.0.0.1")
    {
        var origin = new Origin(file);
        origin._server = await LoopbackServer.StartAsync(origin.Map, bindAddress);
        return origin;
    }

    public async ValueTask DisposeAsync()
    {
        Release.TrySetResult();
        await _server.DisposeAsync();
    }

    private void Map(WebApplication app)
    {
        var file = File;
        var origin = this;
        app.Use(async (context, next) =>
        {
            origin.Requests.Enqueue((context.Request.Path.Value!, context.Request.Headers.Range.FirstOrDefault()));
            await next(context);
        });
        var etag = new EntityTagHeaderValue("\"v1\"");
        app.MapGet("/file.jpg", () => Results.File(file, "image/jpeg", entityTag: etag, enableRangeProcessing: true));
        app.MapGet("/norange.jpg", async (HttpContext c) =>
        {
            c.Response.ContentType = "image/jpeg";
            c.Response.ContentLength = file.Length;
            await c.Response.Body.WriteAsync(file);
        });
        app.MapGet("/redirect/{n:int}", (int n) => Results.Redirect(n <= 1 ? "/file.jpg" : $"/redirect/{n - 1}"));
        app.MapGet("/to-metadata", () => Results.Redirect("http://169.254.169.254/latest/meta-data/"));
        app.MapGet("/files/{name}", (string name) => origin.Files.TryGetValue(name, out var f)
            ? Results.File(f.Bytes, f.ContentType, entityTag: etag, enableRangeProcessing: true)
            : Results.NotFound());
        app.MapGet("/missing", () => Results.NotFound());
        app.MapGet("/broken", () => Results.StatusCode(500));
        app.MapGet("/page", () => Results.Content("<html><body>not media</body></html>", "text/html"));

        // Claims more bytes than the limit the tests set, sends a few and hangs up.
        app.MapGet("/huge", async (HttpContext c) =>
        {
            c.Response.ContentType = "application/octet-stream";
            c.Response.ContentLength = 1L << 40;
            await c.Response.Body.WriteAsync(new byte[16]);
        });

        // First request: half the file, then silence until released or aborted. Ranged requests: served in full.
        app.MapGet("/stall.jpg", async (HttpContext c) =>
        {
            if (c.Request.Headers.Range.Count > 0)
            {
                await Results.File(file, "image/jpeg", entityTag: etag, enableRangeProcessing: true).ExecuteAsync(c);
                return;
            }

            c.Response.ContentType = "image/jpeg";
            c.Response.ContentLength = file.Length;
            c.Response.Headers.ETag = etag.ToString();
            c.Response.Headers.AcceptRanges = "bytes";
            await c.Response.Body.WriteAsync(file.AsMemory(0, file.Length / 2));
            await c.Response.Body.FlushAsync();
            // Not a sleep: the silence lasts until the test releases it or the client gives up on the request.
            await Task.WhenAny(origin.Release.Task, Task.Delay(Timeout.Infinite, c.RequestAborted));
        });

        // Trickles the (rest of the) file in 16 KiB steps, honouring Range, until released.
        app.MapGet("/slow.jpg", async (HttpContext c) =>
        {
            var from = 0;
            if (RangeHeaderValue.TryParse(c.Request.Headers.Range.ToString(), out var range) && range.Ranges.First().From is { } start)
            {
                from = (int)start;
                c.Response.StatusCode = StatusCodes.Status206PartialContent;
                c.Response.Headers.ContentRange = $"bytes {from}-{file.Length - 1}/{file.Length}";
            }

            c.Response.ContentType = "image/jpeg";
            c.Response.ContentLength = file.Length - from;
            c.Response.Headers.ETag = etag.ToString();
            c.Response.Headers.AcceptRanges = "bytes";
            for (var at = from; at < file.Length && !c.RequestAborted.IsCancellationRequested; at += 16 * 1024)
            {
                await c.Response.Body.WriteAsync(file.AsMemory(at, Math.Min(16 * 1024, file.Length - at)), c.RequestAborted);
                await c.Response.Body.FlushAsync(c.RequestAborted);
                if (!origin.Release.Task.IsCompleted)
                {
                    // The trickle is the behaviour served (a slow origin the tests pause and resume mid-download).
                    await Task.Delay(100, c.RequestAborted);
                }
            }
        });
    }
}
