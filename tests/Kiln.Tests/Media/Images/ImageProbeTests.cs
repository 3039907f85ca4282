using Kiln.Media;
using Kiln.Media.Images;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed class ImageProbeTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    [Fact]
    public void A_jpeg_photo_reports_its_size_format_and_bands()
    {
        var info = ImageProbe.Read(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"), TestContext.Current.CancellationToken);

        Assert.Equal((2725, 2225), (info.Width, info.Height));
        Assert.Equal((2725, 2225), (info.StoredWidth, info.StoredHeight));
        Assert.Equal(ImageFamilies.Jpeg, info.Format);
        Assert.Equal("image/jpeg", info.ContentType);
        Assert.Equal(1, info.Orientation);
        Assert.False(info.HasAlpha);
        Assert.Equal(1, info.Pages);
        Assert.Equal(3, info.Bands);
        Assert.Equal("srgb", info.Interpretation);
        Assert.False(info.IsAnimated);
    }

    [Theory]
    [InlineData(1, 600, 450)]
    [InlineData(2, 600, 450)]
    [InlineData(3, 600, 450)]
    [InlineData(4, 600, 450)]
    [InlineData(5, 450, 600)]
    [InlineData(6, 450, 600)]
    [InlineData(7, 450, 600)]
    [InlineData(8, 450, 600)]
    public void Orientation_is_reported_with_stored_and_upright_sizes(int orientation, int storedWidth, int storedHeight)
    {
        var info = ImageProbe.Read(TestPaths.CorpusFile($"Landscape_{orientation}.jpg"), TestContext.Current.CancellationToken);

        Assert.Equal(orientation, info.Orientation);
        Assert.Equal((storedWidth, storedHeight), (info.StoredWidth, info.StoredHeight));
        Assert.Equal((600, 450), (info.Width, info.Height));
    }

    [Fact]
    public void A_png_with_alpha_reports_four_bands_and_alpha()
    {
        var info = ImageProbe.Read(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), TestContext.Current.CancellationToken);

        Assert.Equal(ImageFamilies.Png, info.Format);
        Assert.Equal((2048, 1536), (info.Width, info.Height));
        Assert.True(info.HasAlpha);
        Assert.Equal(4, info.Bands);
    }

    [Fact]
    public void A_webp_is_detected_as_webp()
    {
        var info = ImageProbe.Read(TestPaths.CorpusFile("4.webp"), TestContext.Current.CancellationToken);

        Assert.Equal(ImageFamilies.Webp, info.Format);
        Assert.Equal((1024, 772), (info.Width, info.Height));
    }

    [Fact]
    public void A_png_named_jpg_is_detected_from_its_content()
    {
        var path = scratch.File("really-a-png.jpg");
        File.Copy(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), path, overwrite: true);

        var info = ImageProbe.Read(path, TestContext.Current.CancellationToken);

        Assert.Equal(ImageFamilies.Png, info.Format);
    }

    [Fact]
    public void An_animated_gif_reports_its_frames()
    {
        var path = TestImages.AnimatedGif(scratch, frames: 5);

        var info = ImageProbe.Read(path, TestContext.Current.CancellationToken);

        Assert.Equal(ImageFamilies.Gif, info.Format);
        Assert.Equal(5, info.Pages);
        Assert.True(info.IsAnimated);
        Assert.Equal((TestImages.FrameWidth, TestImages.FrameHeight), (info.Width, info.Height));
    }

    [Fact]
    public void An_avif_is_told_apart_from_other_heif()
    {
        var path = TestImages.Convert(scratch, TestPaths.CorpusFile("Landscape_1.jpg"), "landscape.avif");

        var info = ImageProbe.Read(path, TestContext.Current.CancellationToken);

        Assert.Equal(ImageFamilies.Avif, info.Format);
        Assert.Equal("image/avif", info.ContentType);
    }

    [Fact]
    public void A_zero_byte_file_is_refused_as_empty()
    {
        var path = scratch.File("empty.jpg");
        File.WriteAllBytes(path, []);

        var e = Assert.Throws<MediaException>(() => ImageProbe.Read(path, TestContext.Current.CancellationToken));

        Assert.Equal(ImageErrorCodes.Empty, e.Code);
    }

    [Fact]
    public void Text_is_refused_as_unsupported()
    {
        var path = scratch.File("notes.png");
        File.WriteAllText(path, "just some text, not an image at all\n");

        var e = Assert.Throws<MediaException>(() => ImageProbe.Read(path, TestContext.Current.CancellationToken));

        Assert.Equal(ImageErrorCodes.Unsupported, e.Code);
    }

    [Fact]
    public void An_svg_is_refused_because_untrusted_loaders_are_blocked()
    {
        var path = scratch.File("drawing.svg");
        File.WriteAllText(path, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>");

        var e = Assert.Throws<MediaException>(() => ImageProbe.Read(path, TestContext.Current.CancellationToken));

        Assert.Equal(ImageErrorCodes.Unsupported, e.Code);
    }

    [Theory]
    [InlineData("png", new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A })]
    [InlineData("gif", new byte[] { 0x47, 0x49, 0x46, 0x38, 0x39, 0x61 })]
    [InlineData("webp", new byte[] { 0x52, 0x49, 0x46, 0x46, 0x00, 0x20, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50 })]
    [InlineData("tif", new byte[] { 0x49, 0x49, 0x2A, 0x00 })]
    public void Random_bytes_behind_other_signatures_fail_cleanly_in_every_transform(string extension, byte[] signature)
    {
        var bytes = new byte[4096];
        new Random(extension.Length).NextBytes(bytes);
        signature.CopyTo(bytes, 0);
        var path = scratch.File("garbage." + extension);
        File.WriteAllBytes(path, bytes);
        var dir = scratch.NewDirectory("garbage-" + extension);

        var codes = new[]
        {
            Record.Exception(() => ImageProbe.Read(path, TestContext.Current.CancellationToken)),
            Record.Exception(() => ImageThumbnailer.Generate(path, dir, ThumbnailSpec.Defaults, ImageLimits.Default, TestContext.Current.CancellationToken)),
            Record.Exception(() => ImageOptimizer.Optimize(path, Path.Combine(dir, "o"), new OptimizeOptions(), ImageLimits.Default, TestContext.Current.CancellationToken)),
            Record.Exception(() => ImageEnhancer.Enhance(path, Path.Combine(dir, "e"), new EnhanceOptions(), ImageLimits.Default, TestContext.Current.CancellationToken)),
        }.Select(e => Assert.IsType<MediaException>(e).Code);

        Assert.All(codes, code => Assert.Contains(code, new[] { ImageErrorCodes.Corrupt, ImageErrorCodes.Unsupported }));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void Random_bytes_behind_a_jpeg_signature_are_refused_as_corrupt()
    {
        var path = TestImages.CorruptJpeg(scratch);

        var e = Assert.Throws<MediaException>(() => ImageProbe.Read(path, TestContext.Current.CancellationToken));

        Assert.Equal(ImageErrorCodes.Corrupt, e.Code);
    }
}
