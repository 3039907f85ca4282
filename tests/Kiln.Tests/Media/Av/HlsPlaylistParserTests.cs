using Kiln.Media.Video;

namespace Kiln.Tests.Media.Av;

public sealed class HlsPlaylistParserTests
{
    [Fact]
    public void A_captured_master_playlist_lists_each_variant_with_bandwidth_resolution_and_codecs()
    {
        var variants = HlsPlaylistParser.ParseMaster(Captured.Read("hls-master.m3u8"));

        Assert.Equal(
            [
                new HlsVariant("a/index.m3u8", 435600, 136, 180, "avc1.64000d,mp4a.40.2"),
                new HlsVariant("b/index.m3u8", 655600, 180, 240, "avc1.640014,mp4a.40.2"),
            ],
            variants);
    }

    [Fact]
    public void A_captured_media_playlist_lists_its_segments_in_order()
    {
        Assert.Equal(["seg_000.ts", "seg_001.ts", "seg_002.ts"], HlsPlaylistParser.ParseSegments(Captured.Read("hls-media.m3u8")));
    }

    [Fact]
    public void Quoted_attribute_values_may_contain_commas()
    {
        var attributes = HlsPlaylistParser.ParseAttributes("BANDWIDTH=1,CODECS=\"avc1.4d401f,mp4a.40.2\",RESOLUTION=2x4");

        Assert.Equal("1", attributes["BANDWIDTH"]);
        Assert.Equal("avc1.4d401f,mp4a.40.2", attributes["CODECS"]);
        Assert.Equal("2x4", attributes["RESOLUTION"]);
    }
}
