using Kiln.Assets;

namespace Kiln.Tests.Api;

public sealed class HlsPlaylistTests
{
    private static readonly Guid Id = Guid.Parse("0b7c6f0e-1f49-4c55-9d0c-7a2d3f1b5e6a");

    [Fact]
    public void Relative_references_become_absolute_content_paths_and_carry_the_signature()
    {
        const string master = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\n720p/index.m3u8\n";

        var rewritten = HlsPlaylist.Rewrite(master, Id, "", "expires=1&sig=abc");

        Assert.Equal(
            $"#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=1280x720\n/api/files/{Id}/content/720p/index.m3u8?expires=1&sig=abc\n",
            rewritten);
    }

    [Fact]
    public void Segments_resolve_against_their_playlists_directory_and_uri_attributes_are_rewritten_too()
    {
        const string variant = "#EXTM3U\r\n#EXT-X-MAP:URI=\"init.mp4\"\r\n#EXTINF:4.0,\r\nseg_000.ts\r\n#EXTINF:4.0,\r\n../720p/./seg_001.ts?x=1\r\nhttps://cdn.example/ad.ts\r\n/absolute.ts";

        var rewritten = HlsPlaylist.Rewrite(variant, Id, "720p", null).Split('\n');

        Assert.Equal($"#EXT-X-MAP:URI=\"/api/files/{Id}/content/720p/init.mp4\"", rewritten[1]);
        Assert.Equal($"/api/files/{Id}/content/720p/seg_000.ts", rewritten[3]);
        Assert.Equal($"/api/files/{Id}/content/720p/seg_001.ts?x=1", rewritten[5]);
        Assert.Equal("https://cdn.example/ad.ts", rewritten[6]);
        Assert.Equal("/absolute.ts", rewritten[7]);
        Assert.Equal(8, rewritten.Length);
    }
}
