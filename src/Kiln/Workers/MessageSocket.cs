using System.Buffers;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace Kiln.Workers;

/// <summary>What one receive produced.</summary>
internal enum ReceiveOutcome
{
    Message,
    TooLarge,
    Binary,
    Closed,
}

/// <summary>
/// A WebSocket carrying protocol messages both ways. Sends go through one writer loop (a WebSocket allows one send
/// at a time), so anyone may post without waiting; receives stop reading into memory past the size limit and
/// report the message as too large instead.
/// </summary>
internal sealed class MessageSocket(WebSocket socket, int maxMessageBytes)
{
    private readonly Channel<Outgoing> _outbox = Channel.CreateUnbounded<Outgoing>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ArrayBufferWriter<byte> _incoming = new(4096);
    private readonly byte[] _chunk = new byte[16 * 1024];

    public WebSocketState State => socket.State;

    public string? CloseDescription => socket.CloseStatusDescription;

    /// <summary>Queues a message; false once the socket is closing.</summary>
    public bool Post<T>(T message) => _outbox.Writer.TryWrite(new Outgoing(WorkerProtocol.Encode(message), null, null));

    /// <summary>Queues a close after whatever is already queued; nothing can be posted after it.</summary>
    public void PostClose(WebSocketCloseStatus status, string reason)
    {
        _outbox.Writer.TryWrite(new Outgoing(null, status, reason));
        _outbox.Writer.TryComplete();
    }

    /// <summary>Sends queued messages until a close is sent, the outbox completes, or the token is cancelled.</summary>
    public async Task RunSenderAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var item in _outbox.Reader.ReadAllAsync(cancellationToken))
            {
                if (item.Payload is { } payload)
                {
                    await socket.SendAsync(payload, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
                }
                else if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(item.Status!.Value, item.Reason, cancellationToken);
                    return;
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The connection is gone; the receive side notices and ends the session.
        }
        finally
        {
            _outbox.Writer.TryComplete();
        }
    }

    /// <summary>Reads the next whole message; its bytes are valid until the next call.</summary>
    public async Task<(ReceiveOutcome Outcome, ReadOnlyMemory<byte> Message)> ReceiveAsync(CancellationToken cancellationToken)
    {
        _incoming.ResetWrittenCount();
        var tooLarge = false;
        while (true)
        {
            var result = await socket.ReceiveAsync(_chunk, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (ReceiveOutcome.Closed, default);
            }

            if (!tooLarge)
            {
                if (_incoming.WrittenCount + result.Count > maxMessageBytes)
                {
                    tooLarge = true;
                    _incoming.ResetWrittenCount();
                }
                else
                {
                    _incoming.Write(_chunk.AsSpan(0, result.Count));
                }
            }

            if (result.EndOfMessage)
            {
                if (tooLarge)
                {
                    return (ReceiveOutcome.TooLarge, default);
                }

                return result.MessageType == WebSocketMessageType.Binary ? (ReceiveOutcome.Binary, default) : (ReceiveOutcome.Message, _incoming.WrittenMemory);
            }
        }
    }

    /// <summary>Cuts the connection at once (revoked, silent): no close handshake.</summary>
    public void Abort()
    {
        _outbox.Writer.TryComplete();
        socket.Abort();
    }

    private sealed record Outgoing(byte[]? Payload, WebSocketCloseStatus? Status, string? Reason);
}
