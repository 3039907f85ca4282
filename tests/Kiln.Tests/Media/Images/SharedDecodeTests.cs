using Kiln.Media.Images;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed class SharedDecodeTests(ScratchDirectory scratch) : IClassFixture<ScratchDirectory>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Photo => TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg");

    [Fact]
    public void One_decode_makes_the_optimized_copy_and_the_thumbnails_the_separate_calls_make()
    {
        var dir = scratch.NewDirectory("shared");

        var made = SharedDecode.Make(
            Photo, new OptimizeRequest(Path.Combine(dir, "optimized"), new OptimizeOptions()), new ThumbnailsRequest(dir, ThumbnailSpec.Defaults), ImageLimits.Default, Ct);

        Assert.NotNull(made);
        Assert.Equal(1, made.Decodes);
        var alone = ImageOptimizer.Optimize(Photo, Path.Combine(scratch.NewDirectory("alone"), "optimized"), new OptimizeOptions(), ImageLimits.Default, Ct);
        Assert.Equal((alone.Format, alone.Width, alone.Height, alone.OutputBytes), (made.Optimized.Format, made.Optimized.Width, made.Optimized.Height, made.Optimized.OutputBytes));
        Assert.Equal(Path.Combine(dir, "optimized.jpg"), made.Optimized.OutputPath);
        Assert.Equal([("THUMBNAIL", 150, 150), ("MEDIUM", 735, 600), ("LARGE", 1323, 1080)], made.Thumbnails.Select(t => (t.Name, t.Width, t.Height)));
        foreach (var t in made.Thumbnails)
        {
            var probed = ImageProbe.Read(t.Path, Ct);
            Assert.Equal((t.Width, t.Height, new FileInfo(t.Path).Length), (probed.Width, probed.Height, t.Bytes));
        }
    }

    [Fact]
    public void A_separate_thumbnail_set_reports_its_own_decode()
    {
        var batch = ImageThumbnailer.Make(Photo, scratch.NewDirectory("batch"), ThumbnailSpec.Defaults, ImageLimits.Default, Ct);

        Assert.Equal(1, batch.Decodes);
        Assert.Equal(3, batch.Thumbnails.Count);
    }

    [Fact]
    public void An_image_over_the_limit_is_not_held_and_nothing_is_written()
    {
        var dir = scratch.NewDirectory("over");
        var limits = ImageLimits.Default with { SharedDecodeMaxPixels = 2725L * 2225 - 1 };

        var made = SharedDecode.Make(Photo, new OptimizeRequest(Path.Combine(dir, "optimized"), new OptimizeOptions()), new ThumbnailsRequest(dir, ThumbnailSpec.Defaults), limits, Ct);

        Assert.Null(made);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        Assert.True(SharedDecode.Applies(ImageProbe.Read(Photo, Ct), limits with { SharedDecodeMaxPixels = 2725L * 2225 }));
    }

    [Fact]
    public void Cancel_stops_the_shared_work_and_leaves_no_output()
    {
        var dir = scratch.NewDirectory("cancelled");
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();

        Assert.ThrowsAny<OperationCanceledException>(() => SharedDecode.Make(
            Photo, new OptimizeRequest(Path.Combine(dir, "optimized"), new OptimizeOptions()), new ThumbnailsRequest(dir, ThumbnailSpec.Defaults), ImageLimits.Default, cancel.Token));
        Assert.Empty(Directory.EnumerateFiles(dir));
    }
}
