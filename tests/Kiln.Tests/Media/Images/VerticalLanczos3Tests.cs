using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed unsafe class VerticalLanczos3Tests
{
    [Theory]
    [InlineData(1112, 588, 3)]
    [InlineData(600, 599, 3)]
    [InlineData(600, 97, 1)]
    [InlineData(64, 20, 4)]
    public void It_matches_libvips_reducev_within_rounding_through_the_pipeline_stage(int inHeight, int outHeight, int bands)
    {
        using var photo = VipsOperation.Run("thumbnail", ("filename", TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")), ("width", 100000), ("height", inHeight), ("size", "force"));
        using var strip = VipsOperation.Run("extract_area", ("input", photo), ("left", 0), ("top", 0), ("width", 333), ("height", inHeight));
        using var banded = bands switch
        {
            1 => strip.Call("extract_band", ("band", 1)),
            4 => strip.Call("bandjoin_const", ("c", new[] { 200.0 })),
            _ => strip.Call("copy"),
        };
        using var rows = banded.CopyMemory(CancellationToken.None);
        var transform = VerticalLanczos3.For(inHeight, outHeight);

        // Computed input, so each request gets a region of exactly the rows the window names and no more.
        using var computed = rows.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { 0.0 }), ("uchar", true));
        using var staged = VipsWindowStage.Map(computed, outHeight, transform);
        var ours = staged.ToBytes(CancellationToken.None);

        // The vectorised and the scalar path give the same bytes, straight from the whole input.
        var source = rows.ToBytes(CancellationToken.None);
        var rowBytes = 333 * bands;
        var avx2 = new byte[rowBytes * outHeight];
        var scalar = new byte[avx2.Length];
        fixed (byte* s = source)
        fixed (byte* a = avx2)
        fixed (byte* c = scalar)
        {
            transform.Reduce(s, rowBytes, 0, a, rowBytes, 0, outHeight, rowBytes, useAvx2: true);
            transform.Reduce(s, rowBytes, 0, c, rowBytes, 0, outHeight, rowBytes, useAvx2: false);
        }

        Assert.Equal(scalar, avx2);
        Assert.Equal(avx2, ours);   // the stage asks for strips of rows; the windows make them the same rows

        using var reference = rows.Call("reducev", ("vshrink", (double)inHeight / outHeight), ("kernel", "lanczos3"));
        var expected = reference.ToBytes(CancellationToken.None);
        Assert.Equal(outHeight, reference.Height);
        var differences = expected.Select((e, i) => Math.Abs(e - ours[i])).ToArray();
        Assert.InRange(differences.Average(), 0, 1.0);
        Assert.InRange(differences.Max(), 0, 24);
    }

    [Fact]
    public void A_flat_column_stays_exactly_flat()
    {
        var source = Enumerable.Repeat(new byte[] { 10, 128, 250, 0, 255 }, 500).SelectMany(p => p).ToArray();
        var output = new byte[5 * 130];

        fixed (byte* s = source)
        fixed (byte* d = output)
        {
            VerticalLanczos3.For(500, 130).Transform(s, 5, 0, d, 5, 0, 130, 5);
        }

        Assert.Equal(Enumerable.Repeat(new byte[] { 10, 128, 250, 0, 255 }, 130).SelectMany(p => p), output);
    }

    [Fact]
    public void A_window_covers_the_rows_its_output_rows_need()
    {
        var transform = VerticalLanczos3.For(1112, 588);

        Assert.Equal((0, 7), transform.Window(0, 1));   // centre 0.95, support 5.67: rows 0-6 (none above 0)
        var (first, count) = transform.Window(100, 4);
        Assert.Equal((184, 17), (first, count));       // rows 100-103: centres 190.06-195.73, rows 184-200
        Assert.Equal(1112, transform.Window(587, 1).First + transform.Window(587, 1).Count);
    }
}
