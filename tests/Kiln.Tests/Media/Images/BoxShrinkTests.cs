using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;

namespace Kiln.Tests.Media.Images;

public sealed class BoxShrinkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(2, 3, 75, 41)]   // RGB halved, an odd width and height (the edge is dropped)
    [InlineData(2, 3, 141, 6)]   // RGB halved: 70 pixels, two vector steps of 8 and a tail of 54 bytes
    [InlineData(2, 4, 71, 5)]    // RGBA halved: a vector step of 32 bytes and a tail
    [InlineData(2, 1, 131, 4)]   // grey halved: two vector steps of 32 bytes and a tail
    [InlineData(3, 3, 50, 31)]   // the general loop
    [InlineData(3, 3, 1362, 7)]  // the general loop at the factor the default 150x150 thumbnail takes
    [InlineData(5, 1, 203, 11)]  // the general loop: an area whose reciprocal is not exact (25), grey
    [InlineData(7, 4, 99, 15)]   // the general loop: area 49, RGBA, a tail of columns dropped
    [InlineData(2, 1, 40, 9)]    // grey
    [InlineData(4, 4, 70, 20)]   // RGBA, with a row of more than 32 bytes of whole blocks and a tail
    [InlineData(16, 3, 33, 17)]  // the largest factor: sums of 256 samples up to 255 still fit 16 bits
    public void Each_block_becomes_its_rounded_mean(int factor, int bands, int width, int height)
    {
        var random = new Random(factor * 100 + bands);
        var pixels = new byte[width * height * bands];
        random.NextBytes(pixels);
        if (factor == 16)
        {
            Array.Fill(pixels, (byte)255, 0, width * bands * 16);
        }

        using var input = VipsImage.FromBytes(pixels, width, height, bands);
        var (outWidth, outHeight) = (width / factor, height / factor);
        using var shrunk = VipsRowStage.Map(input, outWidth, new BoxShrink(factor, outWidth, bands), verticalFactor: factor);
        Assert.Equal((outWidth, outHeight, bands), (shrunk.Width, shrunk.Height, shrunk.Bands));

        var actual = shrunk.ToBytes(Ct);

        var expected = new byte[outWidth * outHeight * bands];
        for (var y = 0; y < outHeight; y++)
        {
            for (var x = 0; x < outWidth; x++)
            {
                for (var b = 0; b < bands; b++)
                {
                    var sum = 0;
                    for (var dy = 0; dy < factor; dy++)
                    {
                        for (var dx = 0; dx < factor; dx++)
                        {
                            sum += pixels[((((y * factor) + dy) * width) + (x * factor) + dx) * bands + b];
                        }
                    }

                    expected[(((y * outWidth) + x) * bands) + b] = (byte)((sum + (factor * factor / 2)) / (factor * factor));
                }
            }
        }

        Assert.Equal(expected, actual);
        if (factor == 16)
        {
            Assert.Equal(255, actual[0]);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public unsafe void Halving_gives_the_rounded_mean_of_each_2x2_block_at_every_width(int bands)
    {
        // Every width from 1 to 3 vector steps and then some, so each band count meets a tail of every length,
        // including none; the bytes after the row must stay untouched (the vector stores overlap).
        var random = new Random(bands);
        for (var width = 1; width <= 200; width++)
        {
            var top = new byte[2 * width * bands];
            var bottom = new byte[2 * width * bands];
            random.NextBytes(top);
            random.NextBytes(bottom);
            var actual = new byte[(width * bands) + 32];
            Array.Fill(actual, (byte)0xA5, width * bands, 32);
            var expected = (byte[])actual.Clone();
            for (var i = 0; i < width * bands; i++)
            {
                var j = ((i / bands) * 2 * bands) + (i % bands);
                expected[i] = (byte)((top[j] + top[j + bands] + bottom[j] + bottom[j + bands] + 2) / 4);
            }

            fixed (byte* t = top, b = bottom, o = actual)
            {
                BoxShrink.Halve(t, b, o, width, bands);
            }

            Assert.True(expected.AsSpan().SequenceEqual(actual), $"width {width}, bands {bands}");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    public unsafe void Halving_covers_every_block_sum_from_0_to_1020(int bands)
    {
        // Output byte i's block is built to sum to i (mod 1021), split as evenly as it goes over its 4 samples, so the
        // sums meet every remainder mod 4 and both extremes (4 x 0 and 4 x 255), and the mean is (sum + 2) / 4.
        const int width = 1021;
        var top = new byte[2 * width * bands];
        var bottom = new byte[2 * width * bands];
        var expected = new byte[width * bands];
        for (var i = 0; i < expected.Length; i++)
        {
            var sum = i % 1021;
            var (q, r) = (sum / 4, sum % 4);
            var j = ((i / bands) * 2 * bands) + (i % bands);
            (top[j], top[j + bands], bottom[j], bottom[j + bands]) = ((byte)(q + (r > 0 ? 1 : 0)), (byte)(q + (r > 1 ? 1 : 0)), (byte)(q + (r > 2 ? 1 : 0)), (byte)q);
            expected[i] = (byte)((sum + 2) / 4);
        }

        var actual = new byte[width * bands];
        fixed (byte* t = top, b = bottom, o = actual)
        {
            BoxShrink.Halve(t, b, o, width, bands);
        }

        Assert.Equal(expected, actual);
        Assert.Equal(255, actual[1020]);
    }

    [Fact]
    public void The_reciprocal_divides_exactly_every_block_sum_of_every_factor()
    {
        for (var factor = 2; factor <= BoxShrink.MaxFactor; factor++)
        {
            var area = factor * factor;
            var reciprocal = BoxShrink.Reciprocal(area);
            for (var n = 0UL; n <= (ulong)((255 * area) + (area / 2)); n++)
            {
                Assert.True((n * reciprocal) >> 32 == n / (ulong)area, $"{n} / {area}");
            }
        }
    }
}
