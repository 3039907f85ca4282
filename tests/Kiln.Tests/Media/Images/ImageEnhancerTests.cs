using Kiln.Media;
using Kiln.Media.Images;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed class ImageEnhancerTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Out(string name) => Path.Combine(scratch.NewDirectory(name), "enhanced");

    [Fact]
    public void A_washed_out_photo_gets_its_contrast_back()
    {
        // Squeeze the photo's values into 64–191: a flat, foggy version of it.
        var input = TestImages.Linear(scratch, TestPaths.CorpusFile("Landscape_1.jpg"), "foggy.png", 0.5, 64);

        var result = ImageEnhancer.Enhance(input, Out("foggy"), new EnhanceOptions(), ImageLimits.Default, Ct);

        Assert.True(result.Gain > 1.5, $"gain {result.Gain}");
        Assert.True(result.BlackPoint > 20, $"black point {result.BlackPoint}");
        Assert.True(Pixels.Deviation(result.OutputPath) > 1.5 * Pixels.Deviation(input));
        Assert.Equal(ImageFamilies.Jpeg, result.Format);
        Assert.Equal((600, 450), (result.Width, result.Height));
        Assert.Equal(new FileInfo(result.OutputPath).Length, result.Bytes);
    }

    [Fact]
    public void A_photo_that_already_spans_the_range_is_barely_changed()
    {
        var input = TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");

        var result = ImageEnhancer.Enhance(input, Out("full-range"), new EnhanceOptions { SharpenSigma = 0 }, ImageLimits.Default, Ct);

        Assert.InRange(result.Gain, 1.0, 1.3);
        Assert.InRange(Math.Abs(Pixels.Mean(result.OutputPath) - Pixels.Mean(input)), 0, 12);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Enhanced_output_is_upright_and_matches_the_unrotated_original(int orientation)
    {
        var upright = ImageEnhancer.Enhance(TestPaths.CorpusFile("Landscape_1.jpg"), Out("o1"), new EnhanceOptions(), ImageLimits.Default, Ct);

        var rotated = ImageEnhancer.Enhance(TestPaths.CorpusFile($"Landscape_{orientation}.jpg"), Out($"o{orientation}"), new EnhanceOptions(), ImageLimits.Default, Ct);

        Assert.Equal((600, 450), (rotated.Width, rotated.Height));
        var probed = ImageProbe.Read(rotated.OutputPath, Ct);
        Assert.Equal((1, 600, 450), (probed.Orientation, probed.StoredWidth, probed.StoredHeight));
        Assert.InRange(Pixels.MeanAbsDifference(upright.OutputPath, rotated.OutputPath), 0, 10.0);
    }

    [Fact]
    public void Alpha_is_kept_in_webp_and_png_and_flattened_in_jpeg()
    {
        var input = TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png");

        var auto = ImageEnhancer.Enhance(input, Out("alpha-auto"), new EnhanceOptions(), ImageLimits.Default, Ct);
        var png = ImageEnhancer.Enhance(input, Out("alpha-png"), new EnhanceOptions { Format = ImageOutputFormat.Png }, ImageLimits.Default, Ct);
        var jpeg = ImageEnhancer.Enhance(input, Out("alpha-jpeg"), new EnhanceOptions { Format = ImageOutputFormat.Jpeg }, ImageLimits.Default, Ct);

        Assert.Equal(ImageFamilies.Webp, auto.Format);
        Assert.True(ImageProbe.Read(auto.OutputPath, Ct).HasAlpha);
        Assert.Equal(ImageFamilies.Png, png.Format);
        var pngInfo = ImageProbe.Read(png.OutputPath, Ct);
        Assert.True(pngInfo.HasAlpha);
        Assert.Equal((2048, 1536), (pngInfo.Width, pngInfo.Height));
        Assert.Equal(3, ImageProbe.Read(jpeg.OutputPath, Ct).Bands);
    }

    [Fact]
    public void An_image_over_the_pixel_limit_is_refused_and_leaves_no_file()
    {
        var output = Out("limit");

        var e = Assert.Throws<MediaException>(() => ImageEnhancer.Enhance(
            TestPaths.CorpusFile("Landscape_1.jpg"), output, new EnhanceOptions(), new ImageLimits { MaxPixels = 100_000 }, Ct));

        Assert.Equal(ImageErrorCodes.TooLarge, e.Code);
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public void A_corrupt_image_fails_with_image_corrupt_and_leaves_no_file()
    {
        var output = Out("corrupt");

        var e = Assert.Throws<MediaException>(() => ImageEnhancer.Enhance(TestImages.TruncatedJpeg(scratch), output, new EnhanceOptions(), ImageLimits.Default, Ct));

        Assert.Equal(ImageErrorCodes.Corrupt, e.Code);
        Assert.Empty(Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!));
    }
}
