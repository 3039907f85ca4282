using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Kiln.Tests.Transcription;

/// <summary>What the fake provider received: method, path, headers, form fields and the uploaded file's size.</summary>
public sealed record ReceivedRequest(
    string Path, string? Authorization, string? ContentType, Dictionary<string, string> Fields, string? FileName, long FileBytes, string Body, DateTimeOffset At);

/// <summary>A reply the fake sends: status, body and extra headers.</summary>
public sealed record ScriptedReply(int Status, string Body, Dictionary<string, string>? Headers = null);

/// <summary>
/// A local Kestrel server standing in for OpenAI-compatible and Gemini endpoints: it records each request as the
/// provider sent it (multipart fields, JSON body, headers) and answers from a script; when the script is empty it
/// answers with <see cref="Default"/>.
/// </summary>
public sealed class FakeAiServer : IAsyncDisposable
{
    private readonly ConcurrentQueue<ScriptedReply> _script = new();
    private LoopbackServer _server = null!;

    public ConcurrentQueue<ReceivedRequest> Received { get; } = new();

    public Func<ReceivedRequest, ScriptedReply>? Default { get; set; }

    /// <summary>The address without a trailing slash, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string BaseUrl => _server.BaseAddress.GetLeftPart(UriPartial.Authority);

    public static async Task<FakeAiServer> StartAsync()
    {
        var fake = new FakeAiServer();
        fake._server = await LoopbackServer.StartAsync(app => app.Run(fake.HandleAsync));
        return fake;
    }

    public void Enqueue(params ScriptedReply[] replies)
    {
        foreach (var r in replies)
        {
            _script.Enqueue(r);
        }
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();

    private async Task HandleAsync(HttpContext http)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        string? fileName = null;
        long fileBytes = 0;
        var body = "";
        if (http.Request.HasFormContentType)
        {
            var form = await http.Request.ReadFormAsync();
            foreach (var (key, value) in form)
            {
                fields[key] = value.ToString();
            }

            if (form.Files.Count > 0 && form.Files[0] is { } file)
            {
                fileName = file.FileName;
                fileBytes = file.Length;
                fields["@" + file.Name] = file.ContentType;
            }
        }
        else
        {
            body = await new StreamReader(http.Request.Body).ReadToEndAsync();
        }

        var request = new ReceivedRequest(
            http.Request.Path + http.Request.QueryString, http.Request.Headers.Authorization.FirstOrDefault(), http.Request.ContentType,
            fields, fileName, fileBytes, body, DateTimeOffset.UtcNow);
        foreach (var (key, value) in http.Request.Headers.Where(h => h.Key.StartsWith("x-", StringComparison.OrdinalIgnoreCase)))
        {
            fields["header:" + key.ToLowerInvariant()] = value.ToString();
        }

        Received.Enqueue(request);
        var reply = _script.TryDequeue(out var scripted) ? scripted : Default?.Invoke(request) ?? new ScriptedReply(500, "{\"error\":{\"message\":\"no script\"}}");
        http.Response.StatusCode = reply.Status;
        http.Response.ContentType = "application/json";
        foreach (var (key, value) in reply.Headers ?? [])
        {
            http.Response.Headers[key] = value;
        }

        await http.Response.WriteAsync(reply.Body);
    }
}
