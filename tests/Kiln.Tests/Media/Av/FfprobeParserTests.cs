using Kiln.Media;
using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class FfprobeParserTests
{
    [Fact]
    public void A_rotated_mp4_yields_its_streams_and_the_display_size_after_rotation()
    {
        var probe = FfprobeParser.Parse(Captured.Read("probe-h264-aac-rotated.json"));

        Assert.Equal("mov,mp4,m4a,3gp,3g2,mj2", probe.FormatName);
        Assert.Equal(TimeSpan.FromSeconds(3), probe.Duration);
        Assert.Equal(785365, probe.BitRate);
        Assert.Equal(294512, probe.Size);
        Assert.Equal(2, probe.Streams.Count);
        var video = Assert.IsType<MediaStream>(probe.Video);
        Assert.Equal(("h264", 320, 240, 90), (video.Codec, video.Width, video.Height, video.Rotation));
        Assert.Equal(25, video.FrameRate);
        Assert.Equal(706360, video.BitRate);
        Assert.Equal((240, 320), (probe.DisplayWidth, probe.DisplayHeight));
        var audio = Assert.IsType<MediaStream>(probe.Audio);
        Assert.Equal(("aac", 44100, 1, 69584L), (audio.Codec, audio.SampleRate, audio.Channels, audio.BitRate));
        Assert.True(probe.HasAudio);
        Assert.True(probe.HasVideo);
    }

    [Fact]
    public void A_stereo_wav_has_audio_only()
    {
        var probe = FfprobeParser.Parse(Captured.Read("probe-wav-stereo.json"));

        Assert.False(probe.HasVideo);
        Assert.Null(probe.DisplayWidth);
        var audio = Assert.IsType<MediaStream>(probe.Audio);
        Assert.Equal(("pcm_s16le", 44100, 2), (audio.Codec, audio.SampleRate, audio.Channels));
        Assert.Equal(TimeSpan.FromSeconds(2), probe.Duration);
        Assert.Equal("wav", probe.FormatName);
    }

    [Fact]
    public void Cover_art_in_an_mp3_is_not_counted_as_video()
    {
        var probe = FfprobeParser.Parse(Captured.Read("probe-mp3-cover-art.json"));

        Assert.Equal(2, probe.Streams.Count);
        var cover = probe.Streams.Single(s => s.Type == MediaStreamType.Video);
        Assert.True(cover.IsAttachedPicture);
        Assert.Equal("mjpeg", cover.Codec);
        Assert.False(probe.HasVideo);
        Assert.True(probe.HasAudio);
        Assert.Null(probe.Video);
    }

    [Fact]
    public void The_legacy_rotate_tag_is_used_when_there_is_no_display_matrix()
    {
        const string json = """
            {"streams":[{"index":0,"codec_type":"video","codec_name":"h264","width":1920,"height":1080,
              "avg_frame_rate":"30000/1001","tags":{"rotate":"90"}}],
             "format":{"duration":"1.5"}}
            """;

        var probe = FfprobeParser.Parse(json);

        Assert.Equal(270, probe.Video!.Rotation);
        Assert.Equal((1080, 1920), (probe.DisplayWidth, probe.DisplayHeight));
        Assert.Equal(29.97, probe.Video.FrameRate!.Value, 2);
    }

    [Fact]
    public void A_negative_display_matrix_angle_is_normalised_to_0_through_359()
    {
        const string json = """
            {"streams":[{"index":0,"codec_type":"video","width":640,"height":480,
              "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]}],"format":{}}
            """;

        Assert.Equal(270, FfprobeParser.Parse(json).Video!.Rotation);
    }

    [Fact]
    public void The_longest_stream_gives_the_duration_when_the_container_has_none()
    {
        const string json = """
            {"streams":[{"index":0,"codec_type":"audio","duration":"2.5"},{"index":1,"codec_type":"video","duration":"3.25"}],"format":{"duration":"N/A"}}
            """;

        Assert.Equal(TimeSpan.FromSeconds(3.25), FfprobeParser.Parse(json).Duration);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"streams\":[]}")]
    [InlineData("not json at all")]
    public void Output_without_streams_is_unreadable_media(string json)
    {
        var ex = Assert.Throws<MediaException>(() => FfprobeParser.Parse(json));

        Assert.Equal("media.unreadable", ex.Code);
    }

    [Theory]
    [InlineData("25/1", 25.0)]
    [InlineData("24000/1001", 23.976)]
    [InlineData("0/0", null)]
    [InlineData("", null)]
    [InlineData("30", 30.0)]
    public void Frame_rates_are_read_from_ffprobe_fractions(string rate, double? expected)
    {
        var parsed = FfprobeParser.ParseRate(rate);

        if (expected is null)
        {
            Assert.Null(parsed);
        }
        else
        {
            Assert.Equal(expected.Value, parsed!.Value, 3);
        }
    }
}
