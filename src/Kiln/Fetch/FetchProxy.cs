using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace Kiln.Fetch;

/// <summary>
/// The forward proxy Kiln's own download children (yt-dlp, aria2c) must use, so that every connection they open is
/// checked by the same <see cref="AddressGuard"/> rule as the direct downloader's: a tool that resolves names and
/// follows redirects itself cannot be trusted with the deny list. It listens on 127.0.0.1 on an ephemeral port, speaks
/// HTTP CONNECT (https) and absolute-URI forwarding (plain http), and serves only clients that present the
/// credential of an open <see cref="ProxySession"/> — one random secret per download, so nothing else on the machine
/// can use it and each refusal is recorded on the download that caused it.
/// </summary>
internal sealed class FetchProxy(AddressGuard guard, IOptions<FetchOptions> options, ILogger<FetchProxy> logger) : IAsyncDisposable
{
    private const int MaxHeadBytes = 16 * 1024;
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    private readonly ConcurrentDictionary<string, ProxySession> _sessions = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly SemaphoreSlim _startLock = new(1, 1);
    private TcpListener? _listener;
    private Task? _acceptLoop;

    /// <summary>Starts the listener on first use and opens a session with its own credential.</summary>
    public async Task<ProxySession> OpenSessionAsync(long maxBytes, CancellationToken ct)
    {
        var port = await EnsureStartedAsync(ct);
        var session = new ProxySession(this, port, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)), maxBytes);
        _sessions[session.AuthorizationValue] = session;
        return session;
    }

    internal void Remove(ProxySession session) => _sessions.TryRemove(session.AuthorizationValue, out _);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener?.Stop();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
        _startLock.Dispose();
    }

    private async Task<int> EnsureStartedAsync(CancellationToken ct)
    {
        await _startLock.WaitAsync(ct);
        try
        {
            if (_listener is null)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                _listener = listener;
                _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
                logger.LogInformation("Fetch proxy listening on {Endpoint}", listener.LocalEndpoint);
            }

            return ((IPEndPoint)_listener.LocalEndpoint).Port;
        }
        finally
        {
            _startLock.Release();
        }
    }

    private async Task AcceptLoopAsync(TcpListener listener, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync(stopping);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || (e is SocketException && stopping.IsCancellationRequested))
            {
                return;
            }
            catch (SocketException e)
            {
                logger.LogWarning(e, "Fetch proxy: accept failed");
                continue;
            }

            _ = ServeAsync(client, stopping);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stopping)
    {
        using var clientSocket = client;
        await using var clientStream = new NetworkStream(client, ownsSocket: false);
        try
        {
            ProxyRequest? request;
            using (var headTimeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                headTimeout.CancelAfter(TimeSpan.FromSeconds(options.Value.IdleTimeoutSeconds));
                request = await ReadRequestAsync(clientStream, headTimeout.Token);
            }

            if (request is null)
            {
                await ReplyAsync(clientStream, "400 Bad Request", null, stopping);
                return;
            }

            if (request.Header("Proxy-Authorization") is not { } auth || !_sessions.TryGetValue(auth, out var session))
            {
                // Without the session secret nobody (another local user, a page yt-dlp fetched) can use the proxy.
                await ReplyAsync(clientStream, "407 Proxy Authentication Required", "Proxy-Authenticate: Basic realm=\"kiln\"\r\n", stopping);
                return;
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, session.Closing);
            await ForwardAsync(request, session, clientSocket, clientStream, linked.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A client or origin hanging up, or the session closing, ends the relay: nothing to report.
            logger.LogDebug(e, "Fetch proxy: connection ended");
        }
    }

    private async Task ForwardAsync(ProxyRequest request, ProxySession session, Socket clientSocket, NetworkStream clientStream, CancellationToken ct)
    {
        if (ProxyRequest.Destination(request) is not { } target)
        {
            await ReplyAsync(clientStream, "400 Bad Request", null, ct);
            return;
        }

        Socket upstream;
        try
        {
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            connectTimeout.CancelAfter(TimeSpan.FromSeconds(options.Value.ConnectTimeoutSeconds));
            upstream = await guard.ConnectAsync(target.Host, target.Port, connectTimeout.Token);
        }
        catch (FetchForbiddenException e)
        {
            session.Fail(e.Code, e.Message);
            logger.LogWarning("Fetch proxy refused {Host}:{Port}: {Reason}", target.Host, target.Port, e.Message);
            await ReplyAsync(clientStream, "403 Forbidden", $"X-Kiln-Error: {e.Code}\r\n", ct);
            return;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            await ReplyAsync(clientStream, "502 Bad Gateway", null, ct);
            return;
        }

        using var upstreamSocket = upstream;
        await using var upstreamStream = new NetworkStream(upstream, ownsSocket: false);
        if (request.IsConnect)
        {
            await clientStream.WriteAsync("HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray(), ct);
        }
        else
        {
            await upstreamStream.WriteAsync(request.OriginFormHead(target.PathAndQuery), ct);
        }

        if (request.Leftover.Length > 0)
        {
            await upstreamStream.WriteAsync(request.Leftover, ct);
        }

        var up = RelayAsync(clientStream, upstreamStream, null, ct);
        var down = RelayAsync(upstreamStream, clientStream, session, ct);
        if (await Task.WhenAny(up, down) == up)
        {
            // The client sent all it will send: tell the origin, keep relaying its answer.
            upstreamSocket.Shutdown(SocketShutdown.Send);
            await down;
        }

        // The origin is done (Connection: close for plain http; the TLS tunnel for CONNECT): close both sides.
        clientSocket.Shutdown(SocketShutdown.Both);
    }

    private static async Task RelayAsync(Stream from, Stream to, ProxySession? counting, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, ct)) > 0)
        {
            if (counting is not null && !counting.Count(read))
            {
                return;
            }

            await to.WriteAsync(buffer.AsMemory(0, read), ct);
        }
    }

    private static async Task ReplyAsync(Stream client, string status, string? headers, CancellationToken ct) =>
        await client.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"), ct);

    /// <summary>Reads the request head (bounded); whatever arrived after it is kept for the upstream.</summary>
    private static async Task<ProxyRequest?> ReadRequestAsync(Stream client, CancellationToken ct)
    {
        var buffer = new byte[MaxHeadBytes];
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await client.ReadAsync(buffer.AsMemory(filled), ct);
            if (read == 0)
            {
                return null;
            }

            var searchFrom = Math.Max(0, filled - 3);
            filled += read;
            var end = buffer.AsSpan(searchFrom, filled - searchFrom).IndexOf(HeadEnd);
            if (end >= 0)
            {
                var headLength = searchFrom + end + HeadEnd.Length;
                return ProxyRequest.Parse(Encoding.Latin1.GetString(buffer, 0, headLength - HeadEnd.Length), buffer.AsMemory(headLength, filled - headLength).ToArray());
            }
        }

        return null;
    }
}

/// <summary>
/// One download's use of the <see cref="FetchProxy"/>: its credential (given to the child in the proxy URL), the bytes
/// the origin sent through it, and the first refusal, which fails the job with the guard's code instead of the
/// tool's vague exit status. Disposing it closes every connection it still has.
/// </summary>
internal sealed class ProxySession : IDisposable
{
    private const string User = "kiln";
    private readonly FetchProxy _proxy;
    private readonly CancellationTokenSource _closing = new();
    private readonly long _maxBytes;
    private long _bytes;
    private int _disposed;
    private (string Code, string Message)? _failure;

    internal ProxySession(FetchProxy proxy, int port, string secret, long maxBytes)
    {
        _proxy = proxy;
        _maxBytes = maxBytes;
        Url = new Uri($"http://{User}:{secret}@127.0.0.1:{port}");
        AuthorizationValue = "Basic " + Convert.ToBase64String(Encoding.ASCII.GetBytes($"{User}:{secret}"));
    }

    /// <summary>The proxy URL with the credential, for <c>--proxy</c> / <c>--all-proxy</c>. A secret: never logged.</summary>
    public Uri Url { get; }

    internal string AuthorizationValue { get; }

    internal CancellationToken Closing => _closing.Token;

    /// <summary>Bytes origins sent through this session (headers included).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The first refusal (forbidden address or host, too many bytes), or null.</summary>
    public (string Code, string Message)? Failure
    {
        get
        {
            lock (_closing)
            {
                return _failure;
            }
        }
    }

    internal void Fail(string code, string message)
    {
        lock (_closing)
        {
            _failure ??= (code, message);
        }
    }

    /// <summary>Counts bytes from an origin; false (and the session failed) once they pass the download limit.</summary>
    internal bool Count(int read)
    {
        if (Interlocked.Add(ref _bytes, read) <= _maxBytes)
        {
            return true;
        }

        Fail("fetch.too_large", $"The download passed the limit of {_maxBytes} bytes (Kiln:Fetch:MaxBytes).");
        return false;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _proxy.Remove(this);
        _closing.Cancel();
        _closing.Dispose();
    }
}
