using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

public sealed unsafe class HorizontalLanczos3Tests
{
    [Theory]
    [InlineData(1363, 720)]
    [InlineData(600, 599)]
    [InlineData(600, 97)]
    [InlineData(64, 20)]
    public void It_matches_libvips_reduceh_within_rounding(int inWidth, int outWidth)
    {
        using var photo = VipsOperation.Run("thumbnail", ("filename", TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg")), ("width", inWidth), ("height", 100000), ("size", "force"));
        using var streamed = VipsOperation.Run("extract_area", ("input", photo), ("left", 0), ("top", 0), ("width", inWidth), ("height", 40));
        using var rows = streamed.CopyMemory(CancellationToken.None);
        var source = rows.ToBytes(CancellationToken.None);
        Assert.True(HorizontalLanczos3.CanReduce(inWidth, outWidth, 3));

        // One guard byte after the last row: neither path may write past a row (libvips' buffers end there).
        var ours = new byte[(outWidth * 3 * 40) + 1];
        var ssse3Only = new byte[ours.Length];
        ours[^1] = ssse3Only[^1] = 0xA5;
        fixed (byte* s = source)
        fixed (byte* d = ours)
        fixed (byte* d2 = ssse3Only)
        {
            HorizontalLanczos3.For(inWidth, outWidth).Reduce(s, inWidth * 3, d, outWidth * 3, 40, useAvx2: true);
            HorizontalLanczos3.For(inWidth, outWidth).Reduce(s, inWidth * 3, d2, outWidth * 3, 40, useAvx2: false);
        }

        Assert.Equal(ssse3Only, ours);
        Assert.Equal(0xA5, ours[^1]);

        using var reference = rows.Call("reduceh", ("hshrink", (double)inWidth / outWidth), ("kernel", "lanczos3"));
        var expected = reference.ToBytes(CancellationToken.None);
        Assert.Equal(outWidth, reference.Width);
        var differences = expected.Select((e, i) => Math.Abs(e - ours[i])).ToArray();
        Assert.InRange(differences.Average(), 0, 1.0);
        Assert.InRange(differences.Max(), 0, 24);
    }

    [Fact]
    public void A_flat_row_stays_exactly_flat()
    {
        var source = Enumerable.Repeat(new byte[] { 10, 128, 250 }, 500).SelectMany(p => p).ToArray();
        var output = new byte[(130 * 3) + 1];
        output[^1] = 0xA5;

        fixed (byte* s = source)
        fixed (byte* d = output)
        {
            HorizontalLanczos3.For(500, 130).Transform(s, 1500, d, 390, 1);
        }

        Assert.Equal(Enumerable.Repeat(new byte[] { 10, 128, 250 }, 130).SelectMany(p => p), output[..390]);
        Assert.Equal(0xA5, output[^1]);
    }
}
