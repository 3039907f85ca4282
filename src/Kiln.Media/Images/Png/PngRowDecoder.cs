using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using Kiln.Media.Vips;

namespace Kiln.Media.Images.Png;

/// <summary>
/// Decodes a non-interlaced 8- or 16-bit PNG row by row, top to bottom: IDAT data inflated by .NET's zlib (zlib-ng
/// since .NET 9), rows unfiltered in place, palettes expanded, 16-bit samples put in native byte order. The rows
/// are the ones libvips' own PNG loader produces.
/// </summary>
internal sealed unsafe class PngRowDecoder : IRowSource
{
    // Inflating many rows per call: zlib copies the last 32 KB of each call's output into its window, so row-sized
    // calls would copy every byte once more.
    private const int BlockBytes = 256 * 1024;

    private readonly PngHeader header;
    private readonly ZLibStream inflater;
    private readonly int rowBytes;
    private readonly int bytesPerPixel;
    private readonly int rowsPerBlock;

    // Inflated rows, each with its filter byte in front, unfiltered in place; and the last row of the previous block,
    // which the first row of the next one is unfiltered against (all zeros above the first row).
    private byte* block;
    private byte* carried;
    private int blockRows;
    private int nextInBlock;
    private int rowsLeft;
    private bool disposed;

    public PngRowDecoder(PngHeader header, Stream positionedAtFirstIdat)
    {
        this.header = header;
        rowBytes = header.RowBytes;
        bytesPerPixel = header.FilterBytesPerPixel;
        rowsPerBlock = Math.Max(1, BlockBytes / (rowBytes + 1));
        rowsLeft = header.Height;
        inflater = new ZLibStream(new IdatStream(positionedAtFirstIdat, header.FirstIdatLength), CompressionMode.Decompress);
        block = (byte*)NativeMemory.Alloc((nuint)rowsPerBlock * (nuint)(rowBytes + 1));
        carried = (byte*)NativeMemory.AllocZeroed((nuint)rowBytes + 1);
    }

    public void ReadRows(int top, int rows, byte* output, nint stride)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        for (var y = 0; y < rows; y++)
        {
            Emit(NextRow(top + y), output + (y * stride));
        }

        if (top + rows == header.Height)
        {
            // Inflating to the end of the zlib stream verifies its Adler-32 checksum over all the image data.
            Span<byte> probe = stackalloc byte[1];
            if (inflater.Read(probe) != 0)
            {
                throw new InvalidDataException("The PNG image data holds more rows than its header says.");
            }
        }
    }

    /// <summary>The next unfiltered row (without its filter byte), inflating the next block when needed.</summary>
    private byte* NextRow(int y)
    {
        if (nextInBlock == blockRows)
        {
            if (blockRows > 0)
            {
                Buffer.MemoryCopy(block + ((blockRows - 1) * (rowBytes + 1)), carried, rowBytes + 1, rowBytes + 1);
            }

            blockRows = Math.Min(rowsPerBlock, rowsLeft);
            var bytes = new Span<byte>(block, blockRows * (rowBytes + 1));
            if (blockRows == 0 || inflater.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false) != bytes.Length)
            {
                throw new InvalidDataException($"The PNG image data ends before row {y + 1} of {header.Height}.");
            }

            rowsLeft -= blockRows;
            nextInBlock = 0;
        }

        var row = block + (nextInBlock * (rowBytes + 1));
        var prior = nextInBlock == 0 ? carried : row - (rowBytes + 1);
        PngFilters.Unfilter(row[0], row + 1, prior + 1, rowBytes, bytesPerPixel);
        nextInBlock++;
        return row + 1;
    }

    private void Emit(byte* row, byte* output)
    {
        if (header.ColourType == 3)
        {
            ExpandPalette(row, output);
        }
        else if (header.BitDepth == 16)
        {
            BinaryPrimitives.ReverseEndianness(new ReadOnlySpan<ushort>(row, rowBytes / 2), new Span<ushort>(output, rowBytes / 2));
        }
        else
        {
            Buffer.MemoryCopy(row, output, rowBytes, rowBytes);
        }
    }

    private void ExpandPalette(byte* row, byte* output)
    {
        fixed (byte* palette = header.Palette)
        {
            var colours = (uint*)palette;
            if (header.PaletteHasAlpha)
            {
                var target = (uint*)output;
                for (var x = 0; x < header.Width; x++)
                {
                    target[x] = colours[row[x]];
                }

                return;
            }

            for (var x = 0; x < header.Width; x++)
            {
                var colour = palette + (row[x] * 4);
                output[x * 3] = colour[0];
                output[(x * 3) + 1] = colour[1];
                output[(x * 3) + 2] = colour[2];
            }
        }
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        inflater.Dispose();
        NativeMemory.Free(block);
        NativeMemory.Free(carried);
        block = null;
        carried = null;
    }
}
