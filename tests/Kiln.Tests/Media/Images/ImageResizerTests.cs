using Kiln.Media;
using Kiln.Media.Images;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed class ImageResizerTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_benchmark_photo_becomes_a_720x588_jpeg_close_to_libvips_own_resize()
    {
        var input = File.ReadAllBytes(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"));

        var result = ImageResizer.ResizeToJpeg(input, 720, 588, 80, ImageLimits.Default, Ct);

        Assert.Equal((720, 588, "image/jpeg"), (result.Width, result.Height, result.ContentType));
        var path = scratch.File("resized.jpg");
        File.WriteAllBytes(path, result.Bytes);
        var info = ImageProbe.Read(path, Ct);
        Assert.Equal((ImageFamilies.Jpeg, 720, 588, 3), (info.Format, info.Width, info.Height, info.Bands));

        // Reference: the same shrink-on-load, then libvips' own Lanczos3 resize (scalar horizontal pass) to 720x588.
        using var shrunk = VipsOperation.Run("jpegload", ("filename", TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")), ("shrink", 2));
        using var reference = shrunk.Call("resize", ("scale", 720.0 / shrunk.Width), ("vscale", 588.0 / shrunk.Height), ("kernel", "lanczos3"));
        var referencePath = scratch.File("reference.png");
        reference.Save("pngsave", referencePath, Ct);
        // JPEG Q80 encoding alone moves this photo by about 2.6 per sample on average (measured with the vips CLI).
        Assert.InRange(Pixels.MeanAbsDifference(path, referencePath), 0, 3.2);
    }

    [Fact]
    public void Rotated_input_comes_out_upright()
    {
        var input = File.ReadAllBytes(TestPaths.CorpusFile("Landscape_6.jpg"));

        var result = ImageResizer.ResizeToJpeg(input, 300, 300, 80, ImageLimits.Default, Ct);

        Assert.Equal((300, 225), (result.Width, result.Height));
    }

    [Fact]
    public void A_small_image_is_never_upscaled()
    {
        var input = File.ReadAllBytes(TestPaths.CorpusFile("Landscape_1.jpg"));

        var result = ImageResizer.ResizeToJpeg(input, 2000, 2000, 80, ImageLimits.Default, Ct);

        Assert.Equal((600, 450), (result.Width, result.Height));
    }

    [Fact]
    public void Bad_buffers_fail_with_their_codes()
    {
        var truncated = File.ReadAllBytes(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"));

        Assert.Equal(ImageErrorCodes.Empty, Assert.Throws<MediaException>(() => ImageResizer.ResizeToJpeg(Array.Empty<byte>(), 10, 10, 80, ImageLimits.Default, Ct)).Code);
        Assert.Equal(ImageErrorCodes.Unsupported, Assert.Throws<MediaException>(() => ImageResizer.ResizeToJpeg("hello"u8.ToArray(), 10, 10, 80, ImageLimits.Default, Ct)).Code);
        Assert.Equal(ImageErrorCodes.Corrupt, Assert.Throws<MediaException>(() => ImageResizer.ResizeToJpeg(truncated.AsMemory(0, truncated.Length / 2), 720, 588, 80, ImageLimits.Default, Ct)).Code);
        Assert.Equal(ImageErrorCodes.TooLarge, Assert.Throws<MediaException>(() => ImageResizer.ResizeToJpeg(truncated, 720, 588, 80, new ImageLimits { MaxPixels = 1_000_000 }, Ct)).Code);
    }
}
