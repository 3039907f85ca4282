using Kiln.Media.Images;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

/// <summary>One decode for the optimized copy and the thumbnails (issue 14).</summary>
public sealed class SharedDecodeTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Png => TestPaths.CorpusFile("alpha-premultiply-2048x1536-paper.png");

    private static SharedDerivatives? Make(string input, string dir, ImageLimits limits, CancellationToken cancellationToken) => SharedDecode.Make(
        input, new OptimizeRequest(Path.Combine(dir, "optimized"), new OptimizeOptions()), new ThumbnailsRequest(dir, ThumbnailSpec.Defaults), limits, cancellationToken);

    [Fact]
    public void A_png_is_decoded_once_for_files_identical_to_the_separate_calls()
    {
        var dir = scratch.NewDirectory("shared");

        var made = Make(Png, dir, ImageLimits.Default, Ct);

        Assert.NotNull(made);
        Assert.Equal(1, made.Decodes);
        Assert.Equal(0, made.Optimized.Decodes);
        var aloneDir = scratch.NewDirectory("alone");
        var alone = ImageOptimizer.Optimize(Png, Path.Combine(aloneDir, "optimized"), new OptimizeOptions(), ImageLimits.Default, Ct);
        var thumbnails = ImageThumbnailer.Make(Png, aloneDir, ThumbnailSpec.Defaults, ImageLimits.Default, Ct);

        // Alone, the optimize decodes twice (the colour test for auto, then the encode) and the thumbnails once.
        Assert.Equal((2, 1), (alone.Decodes, thumbnails.Decodes));
        Assert.Equal((alone.Format, alone.Width, alone.Height), (made.Optimized.Format, made.Optimized.Width, made.Optimized.Height));
        Assert.Equal(File.ReadAllBytes(alone.OutputPath), File.ReadAllBytes(made.Optimized.OutputPath));
        Assert.Equal([("THUMBNAIL", 150, 150), ("MEDIUM", 800, 600), ("LARGE", 1440, 1080)], made.Thumbnails.Select(t => (t.Name, t.Width, t.Height)));
        foreach (var (shared, separate) in made.Thumbnails.Zip(thumbnails.Thumbnails))
        {
            Assert.Equal(File.ReadAllBytes(separate.Path), File.ReadAllBytes(shared.Path));
        }
    }

    [Fact]
    public void A_jpeg_is_decoded_once_and_its_thumbnails_match_the_shrink_on_load_ones()
    {
        var jpeg = TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");

        var made = Make(jpeg, scratch.NewDirectory("jpeg"), ImageLimits.Default, Ct);

        Assert.NotNull(made);
        Assert.True(SharedDecode.Applies(jpeg, ImageLimits.Default));
        Assert.Equal(1, made.Decodes);
        var aloneDir = scratch.NewDirectory("jpeg-alone");
        var alone = ImageOptimizer.Optimize(jpeg, Path.Combine(aloneDir, "optimized"), new OptimizeOptions(), ImageLimits.Default, Ct);
        var thumbnails = ImageThumbnailer.Make(jpeg, aloneDir, ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        Assert.Equal(1, thumbnails.Decodes);
        Assert.Equal(File.ReadAllBytes(alone.OutputPath), File.ReadAllBytes(made.Optimized.OutputPath));
        Assert.Equal(
            thumbnails.Thumbnails.Select(t => (t.Name, t.Width, t.Height, t.ContentType)),
            made.Thumbnails.Select(t => (t.Name, t.Width, t.Height, t.ContentType)));

        // Alone, the sizes start from libjpeg's 1/2 decode; shared, from a 2x2 box average of the full decode: the same
        // picture within a level (two JPEG encodes of one image differ by about as much).
        foreach (var (shared, separate) in made.Thumbnails.Zip(thumbnails.Thumbnails))
        {
            Assert.InRange(Pixels.MeanAbsDifference(shared.Path, separate.Path), 0, 1.5);
        }
    }

    [Fact]
    public void A_rotated_jpeg_keeps_its_orientation_through_the_box_average()
    {
        // The corpus photo stored as it is but tagged "rotate 90° clockwise" (EXIF 6): its sizes must come out upright,
        // so the orientation has to survive the box-average stage between the shared decode and the sizes.
        var rotated = Path.Combine(scratch.NewDirectory("rotated-input"), "rotated.jpg");
        using (var photo = Pixels.Load(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")))
        using (var tagged = photo.CopyWithInt("orientation", 6))
        {
            tagged.Save("jpegsave", rotated, Ct, ("Q", 90));
        }

        var made = Make(rotated, scratch.NewDirectory("rotated"), ImageLimits.Default, Ct);

        Assert.NotNull(made);
        var thumbnails = ImageThumbnailer.Make(rotated, scratch.NewDirectory("rotated-alone"), ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        Assert.Equal([("THUMBNAIL", 150, 150), ("MEDIUM", 490, 600), ("LARGE", 882, 1080)], made.Thumbnails.Select(t => (t.Name, t.Width, t.Height)));
        Assert.Equal(thumbnails.Thumbnails.Select(t => (t.Name, t.Width, t.Height)), made.Thumbnails.Select(t => (t.Name, t.Width, t.Height)));
        foreach (var (shared, separate) in made.Thumbnails.Zip(thumbnails.Thumbnails))
        {
            Assert.InRange(Pixels.MeanAbsDifference(shared.Path, separate.Path), 0, 1.5);
        }
    }

    [Fact]
    public void A_webp_shares_its_decode_with_the_sizes_and_optimized_copy_of_the_separate_calls()
    {
        var webp = TestPaths.CorpusFile("4.webp");

        var made = Make(webp, scratch.NewDirectory("webp"), ImageLimits.Default, Ct);

        // libwebp's scaled decode (the thumbnails alone) and a reduction of the full decode differ by a level here and
        // there, so sizes and formats are compared, and the optimized copy byte for byte.
        Assert.NotNull(made);
        Assert.Equal(1, made.Decodes);
        var aloneDir = scratch.NewDirectory("webp-alone");
        var alone = ImageOptimizer.Optimize(webp, Path.Combine(aloneDir, "optimized"), new OptimizeOptions(), ImageLimits.Default, Ct);
        var thumbnails = ImageThumbnailer.Generate(webp, aloneDir, ThumbnailSpec.Defaults, ImageLimits.Default, Ct);
        Assert.Equal(File.ReadAllBytes(alone.OutputPath), File.ReadAllBytes(made.Optimized.OutputPath));
        Assert.Equal(
            thumbnails.Select(t => (t.Name, t.Width, t.Height, t.ContentType)),
            made.Thumbnails.Select(t => (t.Name, t.Width, t.Height, t.ContentType)));
    }

    [Fact]
    public void An_image_over_the_limit_is_not_held_and_nothing_is_written()
    {
        var dir = scratch.NewDirectory("over");
        var limits = ImageLimits.Default with { SharedDecodeMaxPixels = 2048L * 1536 - 1 };

        var made = Make(Png, dir, limits, Ct);

        Assert.Null(made);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        Assert.True(SharedDecode.Applies(Png, limits with { SharedDecodeMaxPixels = 2048L * 1536 }));
    }

    [Fact]
    public void Cancel_stops_the_shared_work_and_leaves_no_output()
    {
        var dir = scratch.NewDirectory("cancelled");
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => Make(Png, dir, ImageLimits.Default, cancel.Token));
        Assert.Empty(Directory.EnumerateFiles(dir));
    }
}
