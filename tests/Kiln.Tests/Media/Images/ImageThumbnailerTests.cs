using Kiln.Media;
using Kiln.Media.Images;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed class ImageThumbnailerTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_defaults_make_a_cover_thumbnail_and_two_inside_fits_of_a_photo()
    {
        var dir = scratch.NewDirectory("defaults");

        var results = ImageThumbnailer.Generate(
            TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"), dir, ThumbnailSpec.Defaults, ImageLimits.Default, Ct);

        Assert.Equal(["THUMBNAIL", "MEDIUM", "LARGE"], results.Select(r => r.Name));
        Assert.Equal((150, 150), (results[0].Width, results[0].Height));
        Assert.Equal((735, 600), (results[1].Width, results[1].Height));
        Assert.Equal((1323, 1080), (results[2].Width, results[2].Height));
        foreach (var r in results)
        {
            var probed = ImageProbe.Read(r.Path, Ct);
            Assert.Equal((r.Width, r.Height), (probed.Width, probed.Height));
            Assert.Equal(ImageFamilies.Jpeg, probed.Format);
            Assert.Equal("image/jpeg", r.ContentType);
            Assert.Equal(new FileInfo(r.Path).Length, r.Bytes);
            Assert.Equal(Path.Combine(dir, r.Name.ToLowerInvariant() + ".jpg"), r.Path);
        }
    }

    [Fact]
    public async Task A_plain_jpeg_takes_the_fast_path_and_matches_libvips_thumbnail()
    {
        // The photo is plain sRGB without rotation or profile, so it is reduced by ImageReducer; libvips' own
        // thumbnail is the reference for size, crop and look.
        var input = TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");
        var dir = scratch.NewDirectory("fast-path");
        Assert.True(ImageReducer.Applies(ImageProbe.Read(input, Ct)));

        var results = ImageThumbnailer.Generate(input, dir, ThumbnailSpec.Defaults, ImageLimits.Default, Ct);

        foreach (var (result, spec) in results.Zip(ThumbnailSpec.Defaults))
        {
            using var reference = Kiln.Media.Vips.VipsOperation.Run(
                "thumbnail",
                ("filename", input),
                ("width", spec.Width),
                ("height", spec.Height),
                ("crop", spec.Fit == ThumbnailFit.Cover ? "centre" : "none"));
            Assert.Equal((reference.Width, reference.Height), (result.Width, result.Height));
            var referencePath = Path.Combine(dir, spec.Name + "-reference.png");
            reference.Save("pngsave", referencePath, Ct);

            // The same thumbnail through JPEG Q80 shows how far encoding alone moves it (2.1 to 3.9 per sample,
            // more for the small one); a shifted crop or a wrong kernel moves it by far more than 1 on top.
            var referenceJpeg = Path.Combine(dir, spec.Name + "-reference.jpg");
            using (var again = Pixels.Load(referencePath))
            {
                ImagePipeline.Save(again, ImageOutputFormat.Jpeg, spec.Quality, referenceJpeg, Ct);
            }

            var encodingAlone = Pixels.MeanAbsDifference(referenceJpeg, referencePath);
            Assert.InRange(Pixels.MeanAbsDifference(result.Path, referencePath), 0, encodingAlone + 1.0);

            // Encoded the way the job encodes, libvips' thumbnail would give these very bytes: the fast path did not.
            Assert.NotEqual(await File.ReadAllBytesAsync(referenceJpeg, Ct), await File.ReadAllBytesAsync(result.Path, Ct));
        }
    }

    [Fact]
    public void Thumbnails_of_all_eight_orientations_are_upright_and_match()
    {
        var spec = new ThumbnailSpec("MEDIUM", 800, 600);
        var outputs = Enumerable.Range(1, 8).Select(n =>
        {
            var result = ImageThumbnailer.Generate(
                TestPaths.CorpusFile($"Landscape_{n}.jpg"), scratch.NewDirectory($"orientation-{n}"), [spec], ImageLimits.Default, Ct)[0];
            Assert.Equal((600, 450), (result.Width, result.Height));
            var probed = ImageProbe.Read(result.Path, Ct);
            Assert.Equal((600, 450), (probed.StoredWidth, probed.StoredHeight));
            Assert.Equal(1, probed.Orientation);
            return result.Path;
        }).ToList();

        // The eight files are separate JPEG encodes of one picture (seven with an Apple RGB profile, which the
        // thumbnails convert to sRGB), so even correctly rotated they differ a little: measured about 5 of 255.
        // A mirrored or wrongly rotated output differs by about 50.
        var differences = outputs.Skip(1).Select(other => Pixels.MeanAbsDifference(outputs[0], other)).ToList();
        Assert.All(differences, d => Assert.InRange(d, 0, 8.0));
    }

    [Fact]
    public void A_portrait_is_centre_cropped_for_cover_and_fitted_for_inside()
    {
        var dir = scratch.NewDirectory("portrait");
        var specs = new[] { new ThumbnailSpec("square", 200, 200, ThumbnailFit.Cover), new ThumbnailSpec("box", 200, 200) };

        var results = ImageThumbnailer.Generate(TestPaths.CorpusFile("Portrait_1.jpg"), dir, specs, ImageLimits.Default, Ct);

        Assert.Equal((200, 200), (results[0].Width, results[0].Height));
        Assert.Equal((150, 200), (results[1].Width, results[1].Height));
    }

    [Fact]
    public void A_small_image_is_never_upscaled()
    {
        var dir = scratch.NewDirectory("small");
        var spec = new ThumbnailSpec("LARGE", 1920, 1080);

        var result = ImageThumbnailer.Generate(TestPaths.CorpusFile("Landscape_1.jpg"), dir, [spec], ImageLimits.Default, Ct)[0];

        Assert.Equal((600, 450), (result.Width, result.Height));
    }

    [Fact]
    public void Alpha_is_flattened_onto_white_for_jpeg_and_kept_for_webp_and_png()
    {
        var dir = scratch.NewDirectory("alpha");
        var specs = new[]
        {
            new ThumbnailSpec("jpeg", 256, 256),
            new ThumbnailSpec("webp", 256, 256, Format: ImageOutputFormat.Webp),
            new ThumbnailSpec("png", 256, 256, Format: ImageOutputFormat.Png),
        };

        var results = ImageThumbnailer.Generate(
            TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), dir, specs, ImageLimits.Default, Ct);

        var jpeg = ImageProbe.Read(results[0].Path, Ct);
        Assert.False(jpeg.HasAlpha);
        Assert.Equal(3, jpeg.Bands);
        Assert.True(ImageProbe.Read(results[1].Path, Ct).HasAlpha);
        Assert.Equal("image/webp", results[1].ContentType);
        Assert.True(ImageProbe.Read(results[2].Path, Ct).HasAlpha);
        Assert.Equal((256, 192), (results[2].Width, results[2].Height));
    }

    [Fact]
    public void An_animated_gif_gives_a_still_thumbnail_of_its_first_frame()
    {
        var gif = TestImages.AnimatedGif(scratch, frames: 4);
        var dir = scratch.NewDirectory("animated");

        var result = ImageThumbnailer.Generate(gif, dir, [new ThumbnailSpec("first", 32, 32, Format: ImageOutputFormat.Png)], ImageLimits.Default, Ct)[0];

        var probed = ImageProbe.Read(result.Path, Ct);
        Assert.Equal(1, probed.Pages);
        Assert.Equal((32, 24), (probed.Width, probed.Height));

        // Frame 0 was generated as RGB (0, 255, 128).
        Assert.InRange(Pixels.MeanOf(result.Path, 0, 4, 4, 24, 16), 0, 10);
        Assert.InRange(Pixels.MeanOf(result.Path, 1, 4, 4, 24, 16), 245, 255);
    }

    [Fact]
    public void A_png_named_jpg_is_thumbnailed_from_its_content()
    {
        var path = scratch.File("disguised.jpg");
        File.Copy(TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png"), path, overwrite: true);

        var result = ImageThumbnailer.Generate(path, scratch.NewDirectory("disguised"), [ThumbnailSpec.Thumbnail], ImageLimits.Default, Ct)[0];

        Assert.Equal((150, 150), (result.Width, result.Height));
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
        var dir = scratch.NewDirectory("bad-" + kind);

        var e = Assert.Throws<MediaException>(() => ImageThumbnailer.Generate(input, dir, ThumbnailSpec.Defaults, ImageLimits.Default, Ct));

        Assert.Equal(code, e.Code);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void An_image_over_the_pixel_limit_is_refused_before_decoding()
    {
        var dir = scratch.NewDirectory("limit");
        var limits = new ImageLimits { MaxPixels = 2_000_000 };

        var e = Assert.Throws<MediaException>(() => ImageThumbnailer.Generate(
            TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"), dir, ThumbnailSpec.Defaults, limits, Ct));

        Assert.Equal(ImageErrorCodes.TooLarge, e.Code);
        Assert.Contains("2725x2225", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }
}
