using System.Buffers.Binary;

namespace Kiln.Media.Images.Png;

/// <summary>
/// What <see cref="PngRowDecoder"/> needs from the chunks before the first IDAT, or null from <see cref="Read"/> when
/// the file is something it leaves to libvips (interlaced, bit depths below 8 or a transparency key on grey/RGB
/// data, an unknown critical chunk, anything malformed).
/// </summary>
internal sealed class PngHeader
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private PngHeader(int width, int height, int bitDepth, int colourType)
    {
        (Width, Height, BitDepth, ColourType) = (width, height, bitDepth, colourType);
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>8 or 16.</summary>
    public int BitDepth { get; }

    /// <summary>0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA.</summary>
    public int ColourType { get; }

    /// <summary>Palette colours as RGBA (alpha from tRNS, 255 without), 256 entries; null unless <see cref="ColourType"/> is 3.</summary>
    public byte[]? Palette { get; private set; }

    public bool PaletteHasAlpha { get; private set; }

    /// <summary>Length of the first IDAT chunk, whose data the stream is positioned at after <see cref="Read"/>.</summary>
    public int FirstIdatLength { get; private set; }

    /// <summary>Bands of the decoded image, as libvips' loader gives them (a palette expands to RGB or RGBA).</summary>
    public int Bands => ColourType switch
    {
        0 => 1,
        2 => 3,
        3 => PaletteHasAlpha ? 4 : 3,
        4 => 2,
        _ => 4,
    };

    /// <summary>Bytes per pixel in the filtered data (what the filters call bpp).</summary>
    public int FilterBytesPerPixel => ColourType == 3 ? 1 : Channels * (BitDepth / 8);

    /// <summary>Bytes of one filtered row, without its filter-type byte.</summary>
    public int RowBytes => checked(Width * FilterBytesPerPixel);

    private int Channels => ColourType switch { 0 or 3 => 1, 2 => 3, 4 => 2, _ => 4 };

    /// <summary>Reads from the signature to the start of the first IDAT chunk's data.</summary>
    public static PngHeader? Read(Stream stream)
    {
        Span<byte> eight = stackalloc byte[8];
        if (stream.ReadAtLeast(eight, 8, throwOnEndOfStream: false) != 8 || !eight.SequenceEqual(Signature))
        {
            return null;
        }

        PngHeader? header = null;
        var data = new byte[256 * 3];
        while (true)
        {
            if (stream.ReadAtLeast(eight, 8, throwOnEndOfStream: false) != 8)
            {
                return null;
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(eight);
            var type = BinaryPrimitives.ReadUInt32BigEndian(eight[4..]);
            if (length < 0 || (header is null && type != Chunk.Ihdr))
            {
                return null;
            }

            if (type == Chunk.Idat)
            {
                if (header is null || (header.ColourType == 3 && header.Palette is null))
                {
                    return null;
                }

                header.FirstIdatLength = length;
                return header;
            }

            // Chunks the decoder reads are small; everything else is skipped without being read into memory.
            var wanted = type is Chunk.Ihdr or Chunk.Plte or Chunk.Trns;
            if (wanted && length > data.Length)
            {
                return null;
            }

            if (wanted && stream.ReadAtLeast(data.AsSpan(0, length), length, throwOnEndOfStream: false) != length)
            {
                return null;
            }

            if (!wanted && !Skip(stream, length))
            {
                return null;
            }

            var body = data.AsSpan(0, wanted ? length : 0);
            var ok = type switch
            {
                Chunk.Ihdr => header is null && (header = ParseIhdr(body)) is not null,
                Chunk.Plte => header!.ReadPalette(body),
                Chunk.Trns => header!.ReadTransparency(body),
                // An unknown critical chunk (upper-case first letter) changes how the image must be read.
                _ => (type & 0x2000_0000) != 0,
            };
            if (!ok || !Skip(stream, 4))
            {
                return null;
            }
        }
    }

    private static PngHeader? ParseIhdr(ReadOnlySpan<byte> body)
    {
        if (body.Length != 13)
        {
            return null;
        }

        var width = BinaryPrimitives.ReadInt32BigEndian(body);
        var height = BinaryPrimitives.ReadInt32BigEndian(body[4..]);
        var (bitDepth, colourType) = (body[8], body[9]);
        var supported = width > 0 && height > 0
            && body[10] == 0 && body[11] == 0 && body[12] == 0 // deflate, adaptive filtering, not interlaced
            && colourType switch
            {
                3 => bitDepth == 8,
                0 or 2 or 4 or 6 => bitDepth is 8 or 16,
                _ => false,
            };
        return supported ? new PngHeader(width, height, bitDepth, colourType) : null;
    }

    private bool ReadPalette(ReadOnlySpan<byte> body)
    {
        if (ColourType != 3)
        {
            // A suggested palette for a true-colour image does not change its pixels.
            return ColourType is 2 or 6;
        }

        if (Palette is not null || body.Length == 0 || body.Length % 3 != 0)
        {
            return false;
        }

        Palette = new byte[256 * 4];
        for (var i = 0; i < 256; i++)
        {
            Palette[(i * 4) + 3] = 255;
        }

        for (var i = 0; i < body.Length / 3; i++)
        {
            body.Slice(i * 3, 3).CopyTo(Palette.AsSpan(i * 4));
        }

        return true;
    }

    private bool ReadTransparency(ReadOnlySpan<byte> body)
    {
        // A transparency key on grey or RGB data adds an alpha band computed by colour comparison: left to libvips.
        if (ColourType != 3 || Palette is null || body.Length > 256)
        {
            return false;
        }

        for (var i = 0; i < body.Length; i++)
        {
            Palette[(i * 4) + 3] = body[i];
        }

        PaletteHasAlpha = true;
        return true;
    }

    private static bool Skip(Stream stream, int bytes)
    {
        if (stream.CanSeek)
        {
            stream.Seek(bytes, SeekOrigin.Current);
            return stream.Position <= stream.Length;
        }

        Span<byte> sink = stackalloc byte[512];
        while (bytes > 0)
        {
            var read = stream.Read(sink[..Math.Min(bytes, sink.Length)]);
            if (read == 0)
            {
                return false;
            }

            bytes -= read;
        }

        return true;
    }

    /// <summary>Chunk types as big-endian integers.</summary>
    internal static class Chunk
    {
        public const uint Ihdr = 0x49484452;
        public const uint Plte = 0x504C5445;
        public const uint Trns = 0x74524E53;
        public const uint Idat = 0x49444154;
    }
}
