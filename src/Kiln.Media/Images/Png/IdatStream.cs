using System.Buffers.Binary;

namespace Kiln.Media.Images.Png;

/// <summary>
/// The zlib stream of a PNG: the data of consecutive IDAT chunks, read through without their framing. It ends at
/// the first chunk that is not an IDAT.
/// </summary>
/// <remarks>
/// Chunk CRCs are not checked, as sharp's PNG decoder (libspng) is configured by libvips: the zlib stream's own
/// Adler-32, which the inflater verifies, covers the same bytes, and a damaged stream fails to inflate.
/// </remarks>
internal sealed class IdatStream(Stream inner, int firstChunkLength) : Stream
{
    private int remaining = firstChunkLength;
    private bool ended;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (remaining == 0 || ended)
        {
            if (ended || !NextChunk())
            {
                ended = true;
                return 0;
            }
        }

        // A file cut inside a chunk simply ends the data; the decoder reports the first row it could not fill.
        var read = inner.Read(buffer[..Math.Min(buffer.Length, remaining)]);
        ended = read == 0;
        remaining -= read;
        return read;
    }

    /// <summary>Steps over the CRC of the chunk just read and the header of the next; false when it is not an IDAT.</summary>
    private bool NextChunk()
    {
        Span<byte> header = stackalloc byte[12];
        if (inner.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) != header.Length)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(header[4..]);
        if (BinaryPrimitives.ReadUInt32BigEndian(header[8..]) != PngHeader.Chunk.Idat)
        {
            return false;
        }

        if (length < 0)
        {
            throw new InvalidDataException("A PNG chunk has an invalid length.");
        }

        remaining = length;
        return true;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
