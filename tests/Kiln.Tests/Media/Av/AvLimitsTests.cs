using Kiln.Media;
using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class AvLimitsTests
{
    [Fact]
    public void A_file_longer_than_the_limit_is_too_long()
    {
        var ex = Assert.Throws<MediaException>(() => AvLimits.Default.Check(Probe(TimeSpan.FromHours(4.5), 1920, 1080)));

        Assert.Equal("media.too_long", ex.Code);
    }

    [Fact]
    public void A_frame_beyond_8k_is_too_large()
    {
        var ex = Assert.Throws<MediaException>(() => AvLimits.Default.Check(Probe(TimeSpan.FromMinutes(1), 8192, 4320)));

        Assert.Equal("media.too_large", ex.Code);
    }

    [Fact]
    public void A_portrait_8k_frame_is_within_the_limits()
    {
        AvLimits.Default.Check(Probe(TimeSpan.FromMinutes(1), 4320, 7680));

        var tight = new AvLimits { MaxWidth = 1280, MaxHeight = 720, MaxDuration = TimeSpan.FromSeconds(10) };
        Assert.Equal("media.too_large", Assert.Throws<MediaException>(() => tight.Check(Probe(TimeSpan.FromSeconds(1), 1920, 1080))).Code);
        Assert.Equal("media.too_long", Assert.Throws<MediaException>(() => tight.Check(Probe(TimeSpan.FromSeconds(11), 640, 360))).Code);
    }

    private static MediaProbe Probe(TimeSpan duration, int width, int height) =>
        new("mp4", duration, null, null, [new(0, MediaStreamType.Video, "h264", null, width, height, 0, 25, null, null, null, duration, false)]);
}
