using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class ScaleMathTests
{
    [Theory]
    [InlineData(1920, 1080, 1280, 720, 1280, 720)]
    [InlineData(1080, 1920, 1920, 1080, 608, 1080)]
    [InlineData(320, 240, 1920, 1080, 320, 240)]
    [InlineData(321, 241, 1920, 1080, 320, 240)]
    public void Fitting_inside_keeps_aspect_never_upscales_and_yields_even_sizes(int w, int h, int maxW, int maxH, int ew, int eh)
    {
        Assert.Equal((ew, eh), ScaleMath.FitInside(w, h, maxW, maxH));
    }

    [Theory]
    [InlineData(1920, 1080, 720, 1280, 720)]
    [InlineData(1080, 1920, 720, 720, 1280)]
    [InlineData(640, 480, 360, 480, 360)]
    [InlineData(1920, 800, 360, 864, 360)]
    public void Scaling_by_the_short_side_treats_portrait_like_landscape(int w, int h, int shortSide, int ew, int eh)
    {
        Assert.Equal((ew, eh), ScaleMath.ForShortSide(w, h, shortSide));
    }
}
