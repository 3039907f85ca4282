using Kiln.Media.Images;
using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

/// <summary>
/// The sharp-style reduction behind thumbnails and in-memory resizes, for every input family: the same size,
/// orientation, colour and alpha handling as libvips' own <c>thumbnail</c> (the reference), within what JPEG
/// encoding alone changes.
/// </summary>
public sealed class ImageReducerTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string> Families => ["jpeg-exif6", "jpeg-exif3", "jpeg-icc", "png-8bit", "png-16bit", "png-alpha", "grey-16bit", "webp", "tiff"];

    [Theory]
    [MemberData(nameof(Families))]
    public void Every_family_takes_the_reducer_and_matches_libvips_thumbnail(string family)
    {
        var input = Make(family);
        var info = ImageProbe.Read(input, Ct);
        Assert.True(ImageReducer.Applies(info), $"{family}: {info}");

        var result = ImageResizer.ResizeToJpeg(File.ReadAllBytes(input), 720, 100_000, 80, ImageLimits.Default, Ct);
        var path = scratch.File(family + "-kiln.jpg");
        File.WriteAllBytes(path, result.Bytes);

        // libvips' thumbnail: upright, colour through the embedded profile, alpha flattened here onto white.
        using var thumbnail = VipsOperation.Run("thumbnail", ("filename", input), ("width", 720), ("height", 100_000), ("size", "down"));
        using var srgb = ImagePipeline.ToSrgb(thumbnail.Call("copy"));
        using var reference = ImagePipeline.FlattenOnWhite(srgb.Call("copy"));
        Assert.Equal((reference.Width, reference.Height), (result.Width, result.Height));
        var referencePath = scratch.File(family + "-reference.png");
        reference.Save("pngsave", referencePath, Ct);

        // The reference through JPEG Q80 shows how far encoding alone moves it; the reducer may differ by 1 more.
        var referenceJpeg = scratch.File(family + "-reference.jpg");
        using (var again = Pixels.Load(referencePath))
        {
            again.Save("jpegsave", referenceJpeg, Ct, ("Q", 80), ("strip", true));
        }

        var encodingAlone = Pixels.MeanAbsDifference(referenceJpeg, referencePath);
        Assert.InRange(Pixels.MeanAbsDifference(path, referencePath), 0, encodingAlone + 1.0);
    }

    [Fact]
    public void Transparent_areas_become_white_in_a_jpeg()
    {
        // A 400x300 image, left half opaque red, right half fully transparent (black underneath).
        var pixels = new byte[400 * 300 * 4];
        for (var i = 0; i < 400 * 300; i++)
        {
            var left = i % 400 < 200;
            pixels[(i * 4) + 0] = (byte)(left ? 255 : 0);
            pixels[(i * 4) + 3] = (byte)(left ? 255 : 0);
        }

        using (var image = VipsImage.FromBytes(pixels, 400, 300, 4))
        {
            image.Save("pngsave", scratch.File("half.png"), Ct);
        }

        var result = ImageResizer.ResizeToJpeg(File.ReadAllBytes(scratch.File("half.png")), 100, 100, 90, ImageLimits.Default, Ct);
        var path = scratch.File("half.jpg");
        File.WriteAllBytes(path, result.Bytes);

        Assert.Equal((100, 75), (result.Width, result.Height));
        Assert.InRange(Pixels.MeanOf(path, 1, 70, 10, 25, 55), 250, 255);   // transparent: white, not black
        Assert.InRange(Pixels.MeanOf(path, 0, 5, 10, 25, 55), 245, 255);    // opaque red stays red
        Assert.InRange(Pixels.MeanOf(path, 1, 5, 10, 25, 55), 0, 10);
    }

    [Fact]
    public unsafe void Flattening_rounds_each_sample_exactly()
    {
        // (colour, alpha) → c·a/255 + 255·(1 − a/255), rounded to nearest.
        byte[] rgba = [0, 100, 255, 0, 0, 100, 255, 255, 0, 100, 255, 128, 10, 20, 30, 1];
        var rgb = new byte[12];
        fixed (byte* s = rgba)
        fixed (byte* d = rgb)
        {
            new FlattenRgbaOnWhite(4).Transform(s, 16, d, 12, 1);
        }

        byte[] expected = [255, 255, 255, 0, 100, 255, 127, 177, 255, 254, 254, 254];
        Assert.Equal(expected, rgb);
    }

    [Fact]
    public void Rotated_cover_thumbnails_match_libvips_crop()
    {
        var input = Make("jpeg-exif6");
        var spec = new ThumbnailSpec("SQUARE", 150, 150, ThumbnailFit.Cover);
        var result = ImageThumbnailer.Generate(input, scratch.NewDirectory("cover"), [spec], ImageLimits.Default, Ct)[0];

        using var reference = VipsOperation.Run("thumbnail", ("filename", input), ("width", 150), ("height", 150), ("crop", "centre"));
        Assert.Equal((150, 150), (result.Width, result.Height));
        var referencePath = scratch.File("cover-reference.png");
        reference.Save("pngsave", referencePath, Ct);
        Assert.InRange(Pixels.MeanAbsDifference(result.Path, referencePath), 0, 6);
    }

    [Fact]
    public void A_webp_is_decoded_straight_to_the_target_size_as_libvips_thumbnail_does()
    {
        var input = Make("webp");
        var info = ImageProbe.Read(input, Ct);
        var opened = new List<(double Shrink, int Width)>();
        VipsImage Open(double shrink)
        {
            var image = VipsOperation.Run("webpload", ("filename", input), ("scale", 1.0 / shrink), ("access", "sequential"));
            opened.Add((shrink, image.Width));
            return image;
        }

        using var result = ImageReducer.Thumbnail(info, Open, () => throw new InvalidOperationException("fallback"), 720, 100_000, ThumbnailFit.Inside, flatten: true, Ct);

        // 2725 → 720: one decode scaled by 1/3.78 to 720 wide, not by 1/2 to 1362 and a Lanczos pass after it.
        var (shrink, width) = Assert.Single(opened);
        Assert.InRange(shrink, 3.78, 3.79);
        Assert.Equal(720, width);
        Assert.Equal((720, (int)Math.Round(2225 * 720 / 2725.0)), (result.Width, result.Height));
    }

    [Fact]
    public void Alpha_kept_for_webp_is_resampled_premultiplied()
    {
        var input = TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png");
        var spec = new ThumbnailSpec("MEDIUM", 800, 600, ThumbnailFit.Inside, ImageOutputFormat.Png);
        var result = ImageThumbnailer.Generate(input, scratch.NewDirectory("alpha"), [spec], ImageLimits.Default, Ct)[0];

        using var reference = VipsOperation.Run("thumbnail", ("filename", input), ("width", 800), ("height", 600));
        var referencePath = scratch.File("alpha-reference.png");
        reference.Save("pngsave", referencePath, Ct);
        Assert.Equal(4, ImageProbe.Read(result.Path, Ct).Bands);
        Assert.InRange(Pixels.MeanAbsDifference(result.Path, referencePath), 0, 1.5);
    }

    [Fact]
    public void Several_sizes_share_one_decode_shrunk_as_far_as_the_largest_allows()
    {
        var input = TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");
        var info = ImageProbe.Read(input, Ct);
        var boxes = ThumbnailSpec.Defaults.Select(s => (s.Width, s.Height, s.Fit)).ToList();
        var opened = new List<double>();
        VipsImage Open(double shrink)
        {
            opened.Add(shrink);
            return VipsOperation.Run("jpegload", ("filename", input), ("shrink", (int)shrink), ("access", "sequential"));
        }

        using (var shared = ImageReducer.DecodeShared(info, Open, boxes, flatten: true, ImageLimits.Default, Ct))
        {
            // LARGE (1920x1080 inside a 2725x2225 photo) allows a shrink of 2 only; one decode serves all three sizes.
            Assert.NotNull(shared);
            Assert.Equal(2, Assert.Single(opened));
            Assert.Equal((1362, 1112), (shared.Width, shared.Height));
        }

        // Over the limit, or for a single size, every size decodes on its own.
        Assert.Null(ImageReducer.DecodeShared(info, Open, boxes, flatten: true, new ImageLimits { SharedDecodeMaxPixels = 1_000_000 }, Ct));
        Assert.Null(ImageReducer.DecodeShared(info, Open, boxes.Take(1).ToList(), flatten: true, ImageLimits.Default, Ct));
        Assert.Equal(2, Assert.Single(opened));
    }

    [Fact]
    public void Thumbnails_from_the_shared_decode_equal_those_decoded_one_by_one()
    {
        var input = TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png");
        var shared = ImageThumbnailer.Generate(input, scratch.NewDirectory("shared"), ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        var alone = ImageThumbnailer.Generate(
            input, scratch.NewDirectory("alone"), ThumbnailSpec.Defaults, new ImageLimits { SharedDecodeMaxPixels = 0 }, Ct);

        foreach (var (a, b) in shared.Zip(alone))
        {
            Assert.Equal((b.Name, b.Width, b.Height), (a.Name, a.Width, a.Height));
            Assert.Equal(File.ReadAllBytes(b.Path), File.ReadAllBytes(a.Path));
        }
    }

    /// <summary>One input per family, made from the corpus photo (or the corpus RGBA PNG) with libvips.</summary>
    private string Make(string family)
    {
        var path = scratch.File(family + family switch
        {
            "webp" => ".webp",
            "tiff" => ".tif",
            _ when family.StartsWith("jpeg", StringComparison.Ordinal) => ".jpg",
            _ => ".png",
        });
        if (File.Exists(path))
        {
            return path;
        }

        if (family == "png-alpha")
        {
            File.Copy(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), path);
            return path;
        }

        using var photo = VipsOperation.Run("jpegload", ("filename", TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")));
        switch (family)
        {
            case "jpeg-exif6" or "jpeg-exif3":
                using (var rotated = photo.CopyWithInt("orientation", family == "jpeg-exif6" ? 6 : 3))
                {
                    rotated.Save("jpegsave", path, Ct, ("Q", 90));
                }

                break;
            case "jpeg-icc":
                // libvips' built-in sRGB profile, the one cameras embed most: its transform runs on both sides.
                photo.Save("jpegsave", path, Ct, ("Q", 90), ("profile", "srgb"));
                break;
            case "png-16bit":
                using (var wide = photo.Call("colourspace", ("space", "rgb16")))
                {
                    wide.Save("pngsave", path, Ct);
                }

                break;
            case "grey-16bit":
                using (var grey = photo.Call("colourspace", ("space", "grey16")))
                {
                    grey.Save("pngsave", path, Ct);
                }

                break;
            case "webp":
                photo.Save("webpsave", path, Ct, ("Q", 90));
                break;
            case "tiff":
                photo.Save("tiffsave", path, Ct, ("compression", "lzw"));
                break;
            default:
                photo.Save("pngsave", path, Ct);
                break;
        }

        return path;
    }
}
