using Kiln.Media.Images.Resampling;
using Kiln.Media.Vips;

namespace Kiln.Tests.Media.Images;

public sealed class BoxShrinkTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(2, 3, 75, 41)]   // the unrolled case: RGB halved, an odd width and height (the edge is dropped)
    [InlineData(3, 3, 50, 31)]   // the general loop
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
}
