using System.Text.Json;
using System.Xml.Linq;
using Kiln.Media.Audio;

namespace Kiln.Tests.Media.Av;

public sealed class WaveformBuilderTests
{
    [Fact]
    public void Each_window_of_samples_per_pixel_becomes_a_min_max_pair_and_the_partial_last_one_counts()
    {
        var builder = new WaveformBuilder(channels: 1, sampleRate: 8000, samplesPerPixel: 3, bits: 16);

        builder.Add([1, -5, 3, 100, 2]);
        builder.Add([-7, 9]);
        var data = builder.Finish();

        Assert.Equal(3, data.Length);
        Assert.Equal([-5, 3, -7, 100, 9, 9], data.Data);
        Assert.Equal(7, builder.FramesSeen);
    }

    [Fact]
    public void Eight_bit_values_are_the_16_bit_peaks_divided_by_256()
    {
        var builder = new WaveformBuilder(1, 44100, 4, bits: 8);

        builder.Add([short.MinValue, short.MaxValue, 255, -255]);

        Assert.Equal([-128, 127], builder.Finish().Data);
    }

    [Fact]
    public void Stereo_peaks_are_interleaved_per_pixel_min_max_left_then_right()
    {
        var builder = new WaveformBuilder(2, 48000, 2, 16);

        builder.Add([10, -1, -10, 1, 5, 7]);
        var data = builder.Finish();

        Assert.Equal(2, data.Length);
        Assert.Equal([-10, 10, -1, 1, 5, 5, 7, 7], data.Data);
    }

    [Fact]
    public void The_json_follows_the_audiowaveform_version_2_layout()
    {
        var data = new WaveformData(1, 44100, 512, 8, 2, [-3, 4, -5, 6]);
        using var stream = new MemoryStream();

        data.WriteJson(stream);
        using var json = JsonDocument.Parse(stream.ToArray());

        var root = json.RootElement;
        Assert.Equal(
            ["version", "channels", "sample_rate", "samples_per_pixel", "bits", "length", "data"],
            root.EnumerateObject().Select(p => p.Name));
        Assert.Equal(2, root.GetProperty("version").GetInt32());
        Assert.Equal(512, root.GetProperty("samples_per_pixel").GetInt32());
        Assert.Equal([-3, 4, -5, 6], root.GetProperty("data").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void The_svg_draws_one_closed_path_per_channel_in_a_fixed_viewbox()
    {
        var data = new WaveformData(2, 44100, 512, 8, 3, [-10, 10, -20, 20, -30, 30, -40, 40, -50, 50, -60, 60]);

        var svg = XDocument.Parse(data.ToSvg(300, 100));

        Assert.Equal("0 0 300 100", svg.Root!.Attribute("viewBox")!.Value);
        var paths = svg.Root.Elements().ToList();
        Assert.Equal(2, paths.Count);
        var d = paths[0].Attribute("d")!.Value;
        Assert.StartsWith("M50 ", d, StringComparison.Ordinal);
        Assert.EndsWith("Z", d, StringComparison.Ordinal);
        Assert.Equal(6, d.Count(ch => ch is 'M' or 'L'));
    }

    [Theory]
    [InlineData(60.0, 44100, 1800, 1470)]
    [InlineData(600.0, 44100, 1800, 14700)]
    [InlineData(0.01, 8000, 1800, 1)]
    public void Samples_per_pixel_keep_the_point_count_near_the_target_whatever_the_duration(double seconds, int rate, int target, int expected)
    {
        Assert.Equal(expected, WaveformGenerator.SamplesPerPixel(TimeSpan.FromSeconds(seconds), rate, target));
    }

    [Fact]
    public void Without_a_duration_there_is_one_pixel_per_second()
    {
        Assert.Equal(44100, WaveformGenerator.SamplesPerPixel(null, 44100, 1800));
    }
}
