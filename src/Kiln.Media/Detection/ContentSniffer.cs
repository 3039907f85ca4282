using System.Text;

namespace Kiln.Media.Detection;

/// <summary>What the first bytes of a file say it is.</summary>
public sealed record SniffResult(MediaKind Kind, string ContentType, string Extension);

/// <summary>
/// Detects the format from magic numbers, never from the file name or the client's MIME type. Needs the first
/// <see cref="HeaderLength"/> bytes (fewer for short files). Unknown content is <see cref="MediaKind.Other"/>,
/// <c>application/octet-stream</c>.
/// </summary>
public static class ContentSniffer
{
    /// <summary>Enough for an MPEG-TS stream's third sync byte (offset 376) and EBML/Ogg codec headers.</summary>
    public const int HeaderLength = 512;

    public static readonly SniffResult Unknown = new(MediaKind.Other, "application/octet-stream", "bin");

    public static SniffResult Sniff(ReadOnlySpan<byte> h)
    {
        if (h.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
        {
            return new(MediaKind.Image, "image/jpeg", "jpg");
        }

        if (h.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            return new(MediaKind.Image, "image/png", "png");
        }

        if (h.StartsWith("GIF87a"u8) || h.StartsWith("GIF89a"u8))
        {
            return new(MediaKind.Image, "image/gif", "gif");
        }

        if (h.Length >= 12 && h.StartsWith("RIFF"u8))
        {
            var form = h.Slice(8, 4);
            if (form.SequenceEqual("WEBP"u8))
            {
                return new(MediaKind.Image, "image/webp", "webp");
            }

            if (form.SequenceEqual("WAVE"u8))
            {
                return new(MediaKind.Audio, "audio/wav", "wav");
            }

            if (form.SequenceEqual("AVI "u8))
            {
                return new(MediaKind.Video, "video/x-msvideo", "avi");
            }
        }

        if (h.StartsWith((ReadOnlySpan<byte>)[(byte)'I', (byte)'I', 0x2A, 0x00]) || h.StartsWith((ReadOnlySpan<byte>)[(byte)'M', (byte)'M', 0x00, 0x2A]))
        {
            return new(MediaKind.Image, "image/tiff", "tiff");
        }

        if (h.StartsWith("BM"u8) && h.Length >= 14 && h[6] == 0 && h[7] == 0 && h[8] == 0 && h[9] == 0)
        {
            return new(MediaKind.Image, "image/bmp", "bmp");
        }

        if (h.Length >= 12 && h.Slice(4, 4).SequenceEqual("ftyp"u8))
        {
            return SniffIsoBmff(h);
        }

        if (h.StartsWith((ReadOnlySpan<byte>)[0x1A, 0x45, 0xDF, 0xA3]))
        {
            // EBML: WebM or Matroska. The doc type sits within the first bytes of the header.
            var isWebm = h.IndexOf("webm"u8) >= 0;
            return isWebm ? new(MediaKind.Video, "video/webm", "webm") : new(MediaKind.Video, "video/x-matroska", "mkv");
        }

        if (h.StartsWith("OggS"u8))
        {
            // The first page carries the first stream's codec header (0x80 "theora" for video; Vorbis, Opus, FLAC for audio).
            return h.IndexOf("theora"u8) >= 0
                ? new(MediaKind.Video, "video/ogg", "ogv")
                : new(MediaKind.Audio, "audio/ogg", "ogg");
        }

        if (h.StartsWith("fLaC"u8))
        {
            return new(MediaKind.Audio, "audio/flac", "flac");
        }

        if (h.StartsWith("ID3"u8) || (h.Length >= 2 && h[0] == 0xFF && (h[1] & 0xE0) == 0xE0 && (h[1] & 0x06) != 0))
        {
            return new(MediaKind.Audio, "audio/mpeg", "mp3");
        }

        if (h.Length >= 2 && h[0] == 0xFF && (h[1] & 0xF6) == 0xF0)
        {
            return new(MediaKind.Audio, "audio/aac", "aac");
        }

        if (h.Length >= 4 && h[0] == 0 && h[1] == 0 && h[2] == 1 && h[3] == 0xBA)
        {
            return new(MediaKind.Video, "video/mpeg", "mpg");
        }

        // MPEG-TS has no magic number, only a sync byte every 188 bytes: demand three of them, or as many as the header holds.
        if (h.Length > 188 && h[0] == 0x47 && h[188] == 0x47 && (h.Length <= 376 || h[376] == 0x47))
        {
            return new(MediaKind.Video, "video/mp2t", "ts");
        }

        return Unknown;
    }

    private static SniffResult SniffIsoBmff(ReadOnlySpan<byte> h)
    {
        var brand = Encoding.ASCII.GetString(h.Slice(8, 4));
        var compatible = h.Length > 16 ? Encoding.ASCII.GetString(h[16..Math.Min(h.Length, 48)]) : "";
        if (brand is "avif" or "avis" || (brand == "mif1" && compatible.Contains("avif", StringComparison.Ordinal)))
        {
            return new(MediaKind.Image, "image/avif", "avif");
        }

        if (brand is "heic" or "heix" or "hevc" or "heim" or "heis" or "mif1" or "msf1")
        {
            return new(MediaKind.Image, "image/heif", "heic");
        }

        if (brand is "M4A " or "M4B " or "M4P ")
        {
            return new(MediaKind.Audio, "audio/mp4", "m4a");
        }

        if (brand == "qt  ")
        {
            return new(MediaKind.Video, "video/quicktime", "mov");
        }

        if (brand.StartsWith("3g", StringComparison.Ordinal))
        {
            return new(MediaKind.Video, "video/3gpp", "3gp");
        }

        return new(MediaKind.Video, "video/mp4", "mp4");
    }
}
