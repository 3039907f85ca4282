using Kiln.Media.FFmpeg;
using Kiln.Media.Video;

namespace Kiln.Tests.Media.Av;

public sealed class HlsPlanTests
{
    private static readonly HlsSettings Settings = new();

    [Fact]
    public void A_1080p_source_gets_the_full_ladder()
    {
        var plan = HlsPlan.Renditions(1920, 1080, Settings);

        Assert.Equal(
            [
                new PlannedRendition("360p", 640, 360, 800, 96),
                new PlannedRendition("720p", 1280, 720, 2800, 128),
                new PlannedRendition("1080p", 1920, 1080, 5000, 128),
            ],
            plan);
    }

    [Fact]
    public void Rungs_above_the_source_are_skipped()
    {
        Assert.Equal(["360p", "720p"], HlsPlan.Renditions(1280, 720, Settings).Select(r => r.Name));
        Assert.Equal(["360p"], HlsPlan.Renditions(1000, 600, Settings).Select(r => r.Name));
    }

    [Fact]
    public void A_portrait_source_is_laddered_by_its_short_side()
    {
        var plan = HlsPlan.Renditions(720, 1280, Settings);

        Assert.Equal([("360p", 360, 640), ("720p", 720, 1280)], plan.Select(r => (r.Name, r.Width, r.Height)));
    }

    [Fact]
    public void A_source_below_the_lowest_rung_gets_one_rendition_at_its_own_size()
    {
        var rendition = Assert.Single(HlsPlan.Renditions(320, 240, Settings));

        Assert.Equal(("240p", 320, 240), (rendition.Name, rendition.Width, rendition.Height));
        Assert.InRange(rendition.VideoBitrateKbps, 150, 800);
    }

    [Fact]
    public void The_command_fixes_the_gop_to_the_segment_length_and_maps_audio_per_variant()
    {
        var probe = Probe(fps: 30, withAudio: true);
        var renditions = HlsPlan.Renditions(1280, 720, Settings);

        var args = HlsPlan.Arguments("/in/a.mp4", "/out/x", probe, renditions, Settings);

        Assert.Equal("120", After(args, "-g"));
        Assert.Equal("120", After(args, "-keyint_min"));
        Assert.Equal("0", After(args, "-sc_threshold"));
        Assert.Equal("expr:gte(t,n_forced*4)", After(args, "-force_key_frames"));
        Assert.Equal("vod", After(args, "-hls_playlist_type"));
        Assert.Equal("independent_segments", After(args, "-hls_flags"));
        Assert.Equal("master.m3u8", After(args, "-master_pl_name"));
        Assert.Equal("v:0,a:0,name:360p v:1,a:1,name:720p", After(args, "-var_stream_map"));
        Assert.Equal("[0:0]split=2[s0][s1];[s0]scale=640:360,format=yuv420p[v0];[s1]scale=1280:720,format=yuv420p[v1]", After(args, "-filter_complex"));
        Assert.Equal(["[v0]", "0:1", "[v1]", "0:1"], args.Select((a, i) => (a, i)).Where(p => p.a == "-map").Select(p => args[p.i + 1]));
        Assert.Equal("file:/in/a.mp4", After(args, "-i"));
        Assert.Equal("/out/x/%v/index.m3u8", args[^1]);
    }

    [Fact]
    public void Without_audio_the_variants_carry_video_only()
    {
        var args = HlsPlan.Arguments("/in/a.mp4", "/out", Probe(fps: 25, withAudio: false), HlsPlan.Renditions(640, 360, Settings), Settings);

        Assert.Equal("v:0,name:360p", After(args, "-var_stream_map"));
        Assert.DoesNotContain("-c:a", args);
        Assert.Equal("100", After(args, "-g"));
    }

    private static string After(List<string> args, string flag) => args[args.IndexOf(flag) + 1];

    private static MediaProbe Probe(double fps, bool withAudio)
    {
        var streams = new List<MediaStream> { new(0, MediaStreamType.Video, "h264", null, 1280, 720, 0, fps, null, null, null, null, false) };
        if (withAudio)
        {
            streams.Add(new(1, MediaStreamType.Audio, "aac", null, null, null, 0, null, 48000, 2, null, null, false));
        }

        return new MediaProbe("mov,mp4,m4a,3gp,3g2,mj2", TimeSpan.FromSeconds(10), null, null, streams);
    }
}
