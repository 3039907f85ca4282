using Kiln.Media.Vips;

namespace Kiln.Media.Images.Png;

/// <summary>
/// Puts <see cref="PngRowDecoder"/> in place of libvips' PNG decoder for a sequential read: libvips still reads the
/// header (size, bands, resolution, ICC profile, EXIF, text), the managed decoder supplies the pixels.
/// </summary>
/// <remarks>
/// Why: libvips 8.14 decodes PNG with Debian's libpng on zlib 1.2.13, and inflating plus libpng's CRCs were 62 % of
/// the CPU of a PNG thumbnail; .NET's zlib-ng inflates about twice as fast. Anything the managed decoder does not
/// handle (interlaced, 1/2/4-bit, a transparency key on grey/RGB, unknown critical chunks, a header that disagrees
/// with libvips') keeps libvips' decoder, so the result never depends on which one ran.
/// </remarks>
internal static class ManagedPng
{
    private const int BandFormatUchar = 0;
    private const int BandFormatUshort = 2;

    /// <summary>
    /// An image with <paramref name="libvipsHeader"/>'s header and metadata whose pixels come from the managed decoder,
    /// or null to keep libvips' image. Takes ownership of <paramref name="stream"/> either way.
    /// </summary>
    public static VipsImage? TryReplace(VipsImage libvipsHeader, Stream stream)
    {
        PngHeader? header;
        try
        {
            header = PngHeader.Read(stream);
        }
        catch (IOException)
        {
            header = null;
        }

        var format = header?.BitDepth == 16 ? BandFormatUshort : BandFormatUchar;
        if (header is null
            || header.Width != libvipsHeader.Width
            || header.Height != libvipsHeader.Height
            || header.Bands != libvipsHeader.Bands
            || format != libvipsHeader.Format)
        {
            stream.Dispose();
            return null;
        }

        return VipsSourceStage.Create(libvipsHeader, new PngRowDecoder(header, stream));
    }
}
