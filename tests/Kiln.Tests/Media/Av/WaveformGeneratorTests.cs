using System.Text.Json;
using System.Xml.Linq;
using Kiln.Media;
using Kiln.Media.Audio;

namespace Kiln.Tests.Media.Av;

public sealed class WaveformGeneratorTests(AvFixtures fixtures)
{
    private readonly WaveformGenerator _generator = new(fixtures.Runner);

    [Fact]
    public async Task A_wav_yields_audiowaveform_json_with_about_the_target_number_of_points()
    {
        var dir = fixtures.NewOutputDirectory();
        var progress = new RecordingProgress();

        var result = await _generator.GenerateAsync(
            await fixtures.Wav, Path.Combine(dir, "w.json"), Path.Combine(dir, "w.svg"), null, progress, TestContext.Current.CancellationToken);

        // 3 s at 44.1 kHz = 132300 samples; 1800 points -> 74 samples per pixel -> 1788 pixels.
        Assert.Equal((1, 44100, 74, 8, 1788), (result.Channels, result.SampleRate, result.SamplesPerPixel, result.Bits, result.Length));
        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(result.JsonPath, TestContext.Current.CancellationToken));
        var root = json.RootElement;
        Assert.Equal(2, root.GetProperty("version").GetInt32());
        Assert.Equal(1, root.GetProperty("channels").GetInt32());
        Assert.Equal(44100, root.GetProperty("sample_rate").GetInt32());
        Assert.Equal(74, root.GetProperty("samples_per_pixel").GetInt32());
        Assert.Equal(8, root.GetProperty("bits").GetInt32());
        Assert.Equal(1788, root.GetProperty("length").GetInt32());
        var data = root.GetProperty("data").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.Equal(1788 * 2, data.Count);

        // lavfi's sine has amplitude 1/8 (4096); spread to stereo at -3 dB that is 2896, 11 in 8-bit. A 74-sample
        // window holds most of a 100-sample 440 Hz cycle, so every pixel spans both signs.
        Assert.Equal((11, -11), (data.Max(), data.Min()));
        Assert.All(data.Chunk(2), pair => Assert.True(pair[0] < 0 && pair[1] > 0, $"{pair[0]},{pair[1]}"));
        Assert.Equal(100, progress.Reports[^1].Percent);
        Assert.Contains(progress.Reports, r => r.Stage == "waveform" && r.Percent is > 0 and < 100);
    }

    [Fact]
    public async Task The_svg_is_a_path_per_channel_in_a_fixed_viewbox()
    {
        var dir = fixtures.NewOutputDirectory();

        var result = await _generator.GenerateAsync(
            await fixtures.Wav, Path.Combine(dir, "w.json"), Path.Combine(dir, "w.svg"),
            new WaveformSettings { SplitChannels = true, Bits = 16, TargetPoints = 300 }, null, TestContext.Current.CancellationToken);

        Assert.Equal((2, 16, 441, 300), (result.Channels, result.Bits, result.SamplesPerPixel, result.Length));
        var svg = XDocument.Load(result.SvgPath);
        Assert.Equal("0 0 1800 200", svg.Root!.Attribute("viewBox")!.Value);
        Assert.Equal(2, svg.Root.Elements().Count());
        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(result.JsonPath, TestContext.Current.CancellationToken));
        Assert.Equal(300 * 2 * 2, json.RootElement.GetProperty("data").GetArrayLength());
    }

    [Fact]
    public async Task The_audio_track_of_a_video_is_drawn()
    {
        var dir = fixtures.NewOutputDirectory();

        var result = await _generator.GenerateAsync(
            await fixtures.VideoWithAudio, Path.Combine(dir, "w.json"), Path.Combine(dir, "w.svg"), null, null, TestContext.Current.CancellationToken);

        Assert.Equal(44100, result.SampleRate);
        // AAC decodes a little past the container's duration (padding), hence a few points over the target.
        Assert.InRange(result.Length, 1750, 1820);
        Assert.True(File.Exists(result.SvgPath));
    }

    [Fact]
    public async Task A_video_without_audio_fails_with_no_audio_and_writes_nothing()
    {
        var dir = fixtures.NewOutputDirectory();

        var ex = await Assert.ThrowsAsync<MediaException>(async () => await _generator.GenerateAsync(
            await fixtures.VideoWithoutAudio, Path.Combine(dir, "w.json"), Path.Combine(dir, "w.svg"), null, null, TestContext.Current.CancellationToken));

        Assert.Equal("media.no_audio", ex.Code);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public async Task Noise_in_an_mp3_reaches_a_large_part_of_full_scale()
    {
        var dir = fixtures.NewOutputDirectory();

        var result = await _generator.GenerateAsync(
            await fixtures.Mp3, Path.Combine(dir, "w.json"), Path.Combine(dir, "w.svg"), new WaveformSettings { Bits = 16 }, null, TestContext.Current.CancellationToken);

        using var json = JsonDocument.Parse(await File.ReadAllBytesAsync(result.JsonPath, TestContext.Current.CancellationToken));
        var data = json.RootElement.GetProperty("data").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.InRange(data.Max(), 8000, 32767);
        Assert.InRange(data.Min(), -32768, -8000);
    }
}
