using System.Buffers.Binary;
using Kiln.Media;
using Kiln.Media.Images;
using Kiln.Media.Images.Png;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

/// <summary>
/// The managed PNG decoder (zlib-ng inflate, managed unfiltering) against libvips' own PNG loader: the same bands,
/// format and bytes for every colour type, bit depth and filter, and the same <c>image.corrupt</c> on damaged data.
/// </summary>
public sealed class ManagedPngTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static readonly string[] FfmpegQuiet = ["-hide_banner", "-loglevel", "error", "-y"];

    private static readonly ImageLimits LibvipsOnly = ImageLimits.Default with { ManagedPngDecoder = false };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Colour layouts libvips writes as PNG colour types 0 (grey), 4 (grey + alpha), 2 (RGB), 6 (RGBA).
    public static TheoryData<string, int, string> Variants()
    {
        var data = new TheoryData<string, int, string>();
        foreach (var layout in new[] { "grey", "grey-alpha", "rgb", "rgba" })
        {
            foreach (var depth in new[] { 8, 16 })
            {
                foreach (var filter in new[] { "none", "sub", "up", "avg", "paeth", "all" })
                {
                    data.Add(layout, depth, filter);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Every_colour_type_depth_and_filter_decodes_to_libvips_pixels(string layout, int depth, string filter)
    {
        var path = scratch.File($"{layout}-{depth}-{filter}.png");
        using (var image = Fixture(layout, depth))
        {
            image.Save("pngsave", path, Ct, ("filter", filter), ("compression", 6));
        }

        AssertManagedEqualsLibvips(path);
    }

    [Fact]
    public void A_palette_png_with_transparency_decodes_to_libvips_rgba_pixels()
    {
        // ffmpeg quantises RGBA to a palette with a transparent entry (PLTE plus tRNS, colour type 3) and filters
        // the rows adaptively; libvips expands it to four bands.
        var source = scratch.File("palette-source.png");
        using (var image = Fixture("rgba", 8))
        {
            image.Save("pngsave", source, Ct);
        }

        var path = scratch.File("palette.png");
        RunFfmpeg(
            "-i", source, "-vf", "split[a][b];[a]palettegen=reserve_transparent=1[p];[b][p]paletteuse=alpha_threshold=128", "-pred", "mixed", path);
        Assert.Equal(3, File.ReadAllBytes(path)[25]);
        AssertManagedEqualsLibvips(path, expectedBands: 4);
    }

    [Fact]
    public void The_corpus_pngs_decode_to_libvips_pixels()
    {
        AssertManagedEqualsLibvips(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), expectedBands: 4);
    }

    [Fact]
    public void A_damaged_idat_checksum_is_not_checked_so_the_managed_decoder_is_what_ran()
    {
        // libpng refuses a critical chunk whose CRC is wrong; the managed decoder relies on zlib's Adler-32 instead
        // (as sharp's libspng is set up by libvips), so decoding this file at all shows the managed path was taken.
        var path = scratch.File("crc.png");
        using (var image = Fixture("rgb", 8))
        {
            image.Save("pngsave", path, Ct);
        }

        var expected = Decode(path, LibvipsOnly);
        var bytes = File.ReadAllBytes(path);
        var idat = IdatChunk(bytes);
        var crcAt = idat + 8 + BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(idat));
        bytes[crcAt] ^= 0xFF;
        File.WriteAllBytes(path, bytes);

        Assert.Equal(expected, Decode(path, ImageLimits.Default));
        var refused = Assert.Throws<MediaException>(() => Decode(path, LibvipsOnly));
        Assert.Equal(ImageErrorCodes.Corrupt, refused.Code);
    }

    [Fact]
    public void A_truncated_png_is_image_corrupt_naming_the_row()
    {
        var path = scratch.File("truncated.png");
        using (var image = Fixture("rgb", 8))
        {
            image.Save("pngsave", path, Ct);
        }

        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());

        var error = Assert.Throws<MediaException>(() => Decode(path, ImageLimits.Default));
        Assert.Equal(ImageErrorCodes.Corrupt, error.Code);
        Assert.Contains("ends before row", error.Message, StringComparison.Ordinal);
        var resized = Assert.Throws<MediaException>(() => ImageResizer.ResizeToJpeg(File.ReadAllBytes(path), 100, 100, 80, ImageLimits.Default, Ct));
        Assert.Equal(ImageErrorCodes.Corrupt, resized.Code);
    }

    [Fact]
    public void Damaged_image_data_is_image_corrupt()
    {
        var path = scratch.File("damaged.png");
        using (var image = Fixture("rgb", 8))
        {
            image.Save("pngsave", path, Ct);
        }

        var bytes = File.ReadAllBytes(path);
        var idat = IdatChunk(bytes);
        var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(idat));
        for (var i = idat + 8 + (length / 2); i < idat + 8 + (length / 2) + 64; i++)
        {
            bytes[i] ^= 0x5A;
        }

        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<MediaException>(() => Decode(path, ImageLimits.Default));
        Assert.Equal(ImageErrorCodes.Corrupt, error.Code);
    }

    [Fact]
    public void Interlaced_pngs_are_left_to_libvips()
    {
        var path = scratch.File("interlaced.png");
        using (var image = Fixture("rgb", 8))
        {
            image.Save("pngsave", path, Ct, ("interlace", true));
        }

        using var stream = File.OpenRead(path);
        Assert.Null(PngHeader.Read(stream));
        Assert.Equal(Decode(path, LibvipsOnly), Decode(path, ImageLimits.Default));
    }

    [Fact]
    public void The_png_resize_through_the_managed_decoder_equals_the_libvips_one()
    {
        var path = scratch.File("resize.png");
        using (var image = Fixture("rgba", 8))
        {
            image.Save("pngsave", path, Ct);
        }

        var input = File.ReadAllBytes(path);
        var managed = ImageResizer.ResizeToJpeg(input, 100, 100, 80, ImageLimits.Default, Ct);
        var libvips = ImageResizer.ResizeToJpeg(input, 100, 100, 80, LibvipsOnly, Ct);
        Assert.Equal((libvips.Width, libvips.Height), (managed.Width, managed.Height));
        Assert.Equal(libvips.Bytes, managed.Bytes);
    }

    private static void AssertManagedEqualsLibvips(string path, int expectedBands = 0)
    {
        // The managed decoder accepts the file (it is not silently left to libvips) ...
        using (var header = ImageSource.Detect(path).Open(sequential: true, allPages: false, LibvipsOnly, Ct))
        using (var managed = ManagedPng.TryReplace(header, File.OpenRead(path)))
        {
            Assert.NotNull(managed);
            if (expectedBands > 0)
            {
                Assert.Equal(expectedBands, managed.Bands);
            }
        }

        // ... and gives libvips' pixels, byte for byte, with the same bands and band format.
        using var reference = ImageSource.Detect(path).Open(sequential: true, allPages: false, LibvipsOnly, Ct);
        using var decoded = ImageSource.Detect(path).Open(sequential: true, allPages: false, ImageLimits.Default, Ct);
        Assert.Equal((reference.Width, reference.Height, reference.Bands, reference.Format, reference.Interpretation),
            (decoded.Width, decoded.Height, decoded.Bands, decoded.Format, decoded.Interpretation));
        Assert.Equal(reference.ToBytes(Ct), decoded.ToBytes(Ct));
    }

    private static byte[] Decode(string path, ImageLimits limits) => ImageSource.Decode(() =>
    {
        using var image = ImageSource.Detect(path).Open(sequential: true, allPages: false, limits, Ct);
        return image.ToBytes(Ct);
    });

    /// <summary>An odd-sized crop of a corpus photo in the given layout and bit depth, with varied alpha.</summary>
    private static VipsImage Fixture(string layout, int depth)
    {
        using var photo = VipsOperation.Run(
            "thumbnail", ("filename", TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")), ("width", 203), ("height", 141));
        var colour = layout.StartsWith("grey", StringComparison.Ordinal) ? photo.Call("colourspace", ("space", "b-w")) : photo.Call("copy");
        if (layout.EndsWith("alpha", StringComparison.Ordinal) || layout == "rgba")
        {
            // Alpha from the first band, so it varies across the image.
            using var first = colour.Call("extract_band", ("band", 0));
            using var withAlpha = VipsOperation.Run("bandjoin", ("in", new[] { colour, first }));
            colour.Dispose();
            colour = withAlpha.Call("copy");
        }

        if (depth == 8)
        {
            return colour;
        }

        using (colour)
        {
            return colour.Call("colourspace", ("space", layout.StartsWith("grey", StringComparison.Ordinal) ? "grey16" : "rgb16"));
        }
    }

    private static int IdatChunk(byte[] png)
    {
        var at = 8;
        while (BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(at + 4)) != PngHeader.Chunk.Idat)
        {
            at += 12 + BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
        }

        return at;
    }

    private static void RunFfmpeg(params string[] arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("ffmpeg") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in FfmpegQuiet.Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, error);
    }
}
