using Kiln.Media;
using Kiln.Media.Images;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed class ImageOptimizerTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Out(string name) => Path.Combine(scratch.NewDirectory(name), "optimized");

    [Fact]
    public void A_jpeg_photo_stays_jpeg_gets_smaller_and_reports_the_saving()
    {
        var input = TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");

        var result = ImageOptimizer.Optimize(input, Out("photo"), new OptimizeOptions(), ImageLimits.Default, Ct);

        Assert.Equal(ImageFamilies.Jpeg, result.Format);
        Assert.Equal("image/jpeg", result.ContentType);
        Assert.EndsWith("optimized.jpg", result.OutputPath, StringComparison.Ordinal);
        Assert.False(result.KeptOriginal);
        Assert.Equal((2725, 2225), (result.Width, result.Height));
        Assert.Equal(new FileInfo(input).Length, result.OriginalBytes);
        Assert.Equal(new FileInfo(result.OutputPath).Length, result.OutputBytes);
        Assert.True(result.OutputBytes < result.OriginalBytes);
        Assert.Equal(result.OriginalBytes - result.OutputBytes, result.BytesSaved);
        Assert.Equal((double)result.OutputBytes / result.OriginalBytes, result.Ratio, 6);
        Assert.Equal(ImageFamilies.Jpeg, ImageProbe.Read(result.OutputPath, Ct).Format);
    }

    [Fact]
    public void Optimized_outputs_of_all_eight_orientations_are_upright_match_and_carry_no_metadata()
    {
        var outputs = Enumerable.Range(1, 8).Select(n =>
        {
            var result = ImageOptimizer.Optimize(
                TestPaths.CorpusFile($"Landscape_{n}.jpg"), Out($"orientation-{n}"), new OptimizeOptions { Format = ImageOutputFormat.Jpeg }, ImageLimits.Default, Ct);
            Assert.Equal((600, 450), (result.Width, result.Height));
            Assert.False(result.KeptOriginal);
            using var image = Pixels.Load(result.OutputPath);
            Assert.Equal((600, 450), (image.Width, image.Height));
            Assert.Equal(1, image.Orientation);
            Assert.False(image.HasField("exif-data"));
            Assert.False(image.HasField("icc-profile-data"));
            return result.OutputPath;
        }).ToList();

        Assert.All(outputs.Skip(1), other => Assert.InRange(Pixels.MeanAbsDifference(outputs[0], other), 0, 8.0));
    }

    [Fact]
    public void Max_width_and_height_scale_down_to_fit_and_never_up()
    {
        var input = TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");

        var down = ImageOptimizer.Optimize(input, Out("down"), new OptimizeOptions { MaxWidth = 1000, MaxHeight = 1000 }, ImageLimits.Default, Ct);
        var up = ImageOptimizer.Optimize(TestPaths.CorpusFile("Landscape_1.jpg"), Out("up"), new OptimizeOptions { MaxWidth = 5000 }, ImageLimits.Default, Ct);

        Assert.Equal((1000, 817), (down.Width, down.Height));
        var probed = ImageProbe.Read(down.OutputPath, Ct);
        Assert.Equal((1000, 817), (probed.Width, probed.Height));
        Assert.Equal((600, 450), (up.Width, up.Height));
    }

    [Fact]
    public void Alpha_is_flattened_onto_white_for_jpeg_and_kept_for_webp()
    {
        var input = HalfTransparentPng();

        var jpeg = ImageOptimizer.Optimize(input, Out("alpha-jpeg"), new OptimizeOptions { Format = ImageOutputFormat.Jpeg }, ImageLimits.Default, Ct);
        var webp = ImageOptimizer.Optimize(input, Out("alpha-webp"), new OptimizeOptions { Format = ImageOutputFormat.Webp }, ImageLimits.Default, Ct);

        Assert.False(ImageProbe.Read(jpeg.OutputPath, Ct).HasAlpha);
        Assert.InRange(Pixels.MeanOf(jpeg.OutputPath, 0, 0, 0, 40, 60), 250, 255);
        Assert.InRange(Pixels.MeanOf(jpeg.OutputPath, 0, 60, 0, 40, 60), 0, 5);
        var webpInfo = ImageProbe.Read(webp.OutputPath, Ct);
        Assert.True(webpInfo.HasAlpha);
        Assert.Equal("image/webp", webp.ContentType);
        Assert.InRange(Pixels.MeanOf(webp.OutputPath, 3, 0, 0, 40, 60), 0, 5);
        Assert.InRange(Pixels.MeanOf(webp.OutputPath, 3, 60, 0, 40, 60), 250, 255);
    }

    [Fact]
    public void Auto_turns_a_photographic_png_into_webp_and_keeps_a_flat_graphic_png()
    {
        var photo = TestImages.Convert(scratch, TestPaths.CorpusFile("Landscape_1.jpg"), "photo.png");
        var graphic = FlatGraphicPng();

        var fromPhoto = ImageOptimizer.Optimize(photo, Out("auto-photo"), new OptimizeOptions(), ImageLimits.Default, Ct);
        var fromGraphic = ImageOptimizer.Optimize(graphic, Out("auto-graphic"), new OptimizeOptions(), ImageLimits.Default, Ct);

        Assert.Equal(ImageFamilies.Webp, fromPhoto.Format);
        Assert.Equal(ImageFamilies.Webp, ImageProbe.Read(fromPhoto.OutputPath, Ct).Format);
        Assert.Equal(ImageFamilies.Png, fromGraphic.Format);
        Assert.Equal(ImageFamilies.Png, ImageProbe.Read(fromGraphic.OutputPath, Ct).Format);
    }

    [Fact]
    public void A_cmyk_jpeg_comes_out_as_srgb_with_similar_colours()
    {
        var cmyk = scratch.File("cmyk.jpg");
        using (var photo = Pixels.Load(TestPaths.CorpusFile("Landscape_1.jpg")))
        using (var converted = photo.Call("colourspace", ("space", "cmyk")))
        {
            converted.Save("jpegsave", cmyk, Ct, ("Q", 90));
        }

        var result = ImageOptimizer.Optimize(cmyk, Out("cmyk"), new OptimizeOptions { Format = ImageOutputFormat.Webp }, ImageLimits.Default, Ct);

        Assert.Equal("cmyk", ImageProbe.Read(cmyk, Ct).Interpretation);
        var info = ImageProbe.Read(result.OutputPath, Ct);
        Assert.Equal(("srgb", 3), (info.Interpretation, info.Bands));
        Assert.InRange(Math.Abs(Pixels.Mean(result.OutputPath) - Pixels.Mean(TestPaths.CorpusFile("Landscape_1.jpg"))), 0, 15);
    }

    [Fact]
    public void A_png_named_jpg_is_optimized_from_its_content()
    {
        var input = scratch.File("disguised-png.jpg");
        File.Copy(FlatGraphicPng(), input, overwrite: true);

        var result = ImageOptimizer.Optimize(input, Out("disguised"), new OptimizeOptions(), ImageLimits.Default, Ct);

        Assert.Equal(ImageFamilies.Png, result.Format);
        Assert.EndsWith(".png", result.OutputPath, StringComparison.Ordinal);
        Assert.Equal((300, 200), (result.Width, result.Height));
    }

    [Fact]
    public void Auto_keeps_webp_as_webp_and_avif_can_be_asked_for()
    {
        var webp = ImageOptimizer.Optimize(TestPaths.CorpusFile("4.webp"), Out("webp"), new OptimizeOptions { Quality = 60 }, ImageLimits.Default, Ct);
        var avif = ImageOptimizer.Optimize(TestPaths.CorpusFile("Landscape_6.jpg"), Out("avif"), new OptimizeOptions { Format = ImageOutputFormat.Avif, Quality = 50 }, ImageLimits.Default, Ct);

        Assert.Equal(ImageFamilies.Webp, webp.Format);
        Assert.Equal(ImageFamilies.Webp, ImageProbe.Read(webp.OutputPath, Ct).Format);
        Assert.Equal(ImageFamilies.Avif, avif.Format);
        Assert.Equal("image/avif", avif.ContentType);
        var avifInfo = ImageProbe.Read(avif.OutputPath, Ct);
        Assert.Equal(ImageFamilies.Avif, avifInfo.Format);
        Assert.Equal((600, 450), (avifInfo.Width, avifInfo.Height));
    }

    [Theory]
    [InlineData("gif")]
    [InlineData("webp")]
    public void An_animation_becomes_an_animated_webp_with_every_frame(string kind)
    {
        var input = kind == "gif" ? TestImages.AnimatedGif(scratch, frames: 6) : TestImages.AnimatedWebp(scratch, frames: 6);

        var result = ImageOptimizer.Optimize(input, Out("anim-" + kind), new OptimizeOptions { MaxWidth = 32 }, ImageLimits.Default, Ct);

        Assert.Equal(ImageFamilies.Webp, result.Format);
        Assert.Equal(6, result.Frames);
        Assert.Equal((32, 24), (result.Width, result.Height));
        var probed = ImageProbe.Read(result.OutputPath, Ct);
        Assert.Equal(6, probed.Pages);
        Assert.True(probed.IsAnimated);
        Assert.Equal((32, 24), (probed.Width, probed.Height));
    }

    [Fact]
    public void When_the_re_encode_is_larger_the_original_bytes_are_kept()
    {
        var small = TestImages.Convert(scratch, TestPaths.CorpusFile("Landscape_1.jpg"), "tiny-q20.jpg", quality: 20);

        var result = ImageOptimizer.Optimize(small, Out("kept"), new OptimizeOptions { Quality = 100 }, ImageLimits.Default, Ct);

        Assert.True(result.KeptOriginal);
        Assert.Equal(result.OriginalBytes, result.OutputBytes);
        Assert.Equal(0, result.BytesSaved);
        Assert.Equal(File.ReadAllBytes(small), File.ReadAllBytes(result.OutputPath));
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(result.OutputPath)!));
    }

    public static TheoryData<string, string> BadInputs => new()
    {
        { "corrupt", ImageErrorCodes.Corrupt },
        { "truncated", ImageErrorCodes.Corrupt },
        { "empty", ImageErrorCodes.Empty },
        { "text", ImageErrorCodes.Unsupported },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void Bad_input_fails_with_its_code_and_leaves_no_file(string kind, string code)
    {
        var input = kind switch
        {
            "corrupt" => TestImages.CorruptJpeg(scratch),
            "truncated" => TestImages.TruncatedJpeg(scratch),
            "empty" => TestImages.Empty(scratch),
            _ => TestImages.Text(scratch),
        };
        var output = Out("bad-" + kind);

        var e = Assert.Throws<MediaException>(() => ImageOptimizer.Optimize(input, output, new OptimizeOptions(), ImageLimits.Default, Ct));

        Assert.Equal(code, e.Code);
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public void An_image_over_the_pixel_limit_is_refused_and_leaves_no_file()
    {
        var output = Out("limit");

        var e = Assert.Throws<MediaException>(() => ImageOptimizer.Optimize(
            TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), output, new OptimizeOptions(), new ImageLimits { MaxPixels = 1_000_000 }, Ct));

        Assert.Equal(ImageErrorCodes.TooLarge, e.Code);
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public void A_cancelled_optimization_throws_and_leaves_no_file()
    {
        var output = Out("cancelled");
        using var cts = new CancellationTokenSource();
        cts.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => ImageOptimizer.Optimize(
            TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"), output, new OptimizeOptions(), ImageLimits.Default, cts.Token));

        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!));
    }

    /// <summary>100x60 RGBA: left 40 columns fully transparent black, right 60 opaque black.</summary>
    private string HalfTransparentPng()
    {
        var path = scratch.File("half-transparent.png");
        using var colour = VipsOperation.Run("black", ("width", 100), ("height", 60), ("bands", 3));
        using var x = VipsOperation.Run("xyz", ("width", 100), ("height", 60));
        using var column = x.Call("extract_band", ("band", 0));
        using var alpha = column.Call("relational_const", ("relational", "moreeq"), ("c", new[] { 50.0 }));
        using var colour8 = colour.Call("cast", ("format", "uchar"));
        using var rgba = VipsOperation.Run("bandjoin", ("in", new[] { colour8, alpha }));
        using var srgb = rgba.Call("copy", ("interpretation", "srgb"));
        srgb.Save("pngsave", path, Ct);
        return path;
    }

    /// <summary>A logo-like picture: three flat colour blocks.</summary>
    private string FlatGraphicPng()
    {
        var path = scratch.File("flat-graphic.png");
        using var black = VipsOperation.Run("black", ("width", 300), ("height", 200), ("bands", 3));
        using var blue = black.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { 30.0, 120.0, 200.0 }), ("uchar", true));
        using var orange = black.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { 240.0, 140.0, 20.0 }), ("uchar", true));
        using var x = VipsOperation.Run("xyz", ("width", 300), ("height", 200));
        using var column = x.Call("extract_band", ("band", 0));
        using var mask = column.Call("relational_const", ("relational", "more"), ("c", new[] { 150.0 }));
        using var picture = VipsOperation.Run("ifthenelse", ("cond", mask), ("in1", orange), ("in2", blue));
        using var srgb = picture.Call("copy", ("interpretation", "srgb"));
        srgb.Save("pngsave", path, Ct);
        return path;
    }
}
