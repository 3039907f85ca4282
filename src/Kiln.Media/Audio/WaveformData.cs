using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kiln.Media.Audio;

/// <summary>
/// Peaks in the BBC audiowaveform JSON layout (version 2): for each pixel, for each channel, a min and a max.
/// <see cref="Data"/> therefore has <c>Length * Channels * 2</c> values, in the range of <see cref="Bits"/>.
/// </summary>
public sealed record WaveformData(int Channels, int SampleRate, int SamplesPerPixel, int Bits, int Length, IReadOnlyList<int> Data)
{
    /// <summary>Writes the audiowaveform v2 JSON object, the format waveform-data.js and peaks.js read.</summary>
    public void WriteJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream);
        json.WriteStartObject();
        json.WriteNumber("version", 2);
        json.WriteNumber("channels", Channels);
        json.WriteNumber("sample_rate", SampleRate);
        json.WriteNumber("samples_per_pixel", SamplesPerPixel);
        json.WriteNumber("bits", Bits);
        json.WriteNumber("length", Length);
        json.WriteStartArray("data");
        foreach (var value in Data)
        {
            json.WriteNumberValue(value);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>
    /// An SVG of the peaks: one filled band per channel (the max outline left to right, then the min outline
    /// back), in a fixed viewBox stretched to whatever size the page gives it. Amplitudes are scaled to the
    /// loudest peak so quiet recordings stay visible; silence stays a flat line.
    /// </summary>
    public string ToSvg(int viewWidth = 1800, int viewHeight = 200)
    {
        var full = Bits == 8 ? 128.0 : 32768.0;
        var peak = Math.Max(Data.Count == 0 ? 0 : Data.Max(v => Math.Abs(v)), full / 100);
        var band = (double)viewHeight / Channels;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {viewWidth} {viewHeight}\" preserveAspectRatio=\"none\">");
        for (var c = 0; c < Channels; c++)
        {
            var middle = band * (c + 0.5);
            var scale = band / 2 / peak;
            var x = (double)viewWidth / Math.Max(1, Length);
            svg.Append("<path d=\"");
            for (var i = 0; i < Length; i++)
            {
                var max = Data[((i * Channels) + c) * 2 + 1];
                svg.Append(CultureInfo.InvariantCulture, $"{(i == 0 ? 'M' : 'L')}{x * (i + 0.5):0.##} {middle - (max * scale):0.##}");
            }

            for (var i = Length - 1; i >= 0; i--)
            {
                var min = Data[((i * Channels) + c) * 2];
                svg.Append(CultureInfo.InvariantCulture, $"L{x * (i + 0.5):0.##} {middle - (min * scale):0.##}");
            }

            svg.Append("Z\" fill=\"currentColor\"/>");
        }

        svg.Append("</svg>");
        return svg.ToString();
    }
}

/// <summary>
/// Folds interleaved 16-bit PCM into min/max pairs per <c>samplesPerPixel</c> window. Memory is one pair per
/// channel for the window in progress plus the finished pairs, whose count the caller bounds by choosing
/// <c>samplesPerPixel</c> from the duration; it does not grow with the number of samples fed.
/// </summary>
internal sealed class WaveformBuilder
{
    private readonly int _channels;
    private readonly int _samplesPerPixel;
    private readonly int _bits;
    private readonly int _sampleRate;
    private readonly short[] _min;
    private readonly short[] _max;
    private readonly List<int> _data = [];
    private int _framesInPixel;
    private int _length;

    public WaveformBuilder(int channels, int sampleRate, int samplesPerPixel, int bits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerPixel, 1);
        if (bits is not (8 or 16))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Waveform bits must be 8 or 16.");
        }

        (_channels, _sampleRate, _samplesPerPixel, _bits) = (channels, sampleRate, samplesPerPixel, bits);
        _min = new short[channels];
        _max = new short[channels];
        ResetPixel();
    }

    public long FramesSeen { get; private set; }

    /// <summary>Feeds whole frames of interleaved samples (<c>samples.Length</c> a multiple of the channel count).</summary>
    public void Add(ReadOnlySpan<short> samples)
    {
        if (samples.Length % _channels != 0)
        {
            throw new ArgumentException("Samples must hold whole frames.", nameof(samples));
        }

        while (samples.Length > 0)
        {
            // Process up to the end of the current pixel in one tight loop per channel.
            var frames = Math.Min(samples.Length / _channels, _samplesPerPixel - _framesInPixel);
            var chunk = samples[..(frames * _channels)];
            if (_channels == 1)
            {
                short lo = _min[0], hi = _max[0];
                foreach (var s in chunk)
                {
                    lo = Math.Min(lo, s);
                    hi = Math.Max(hi, s);
                }

                (_min[0], _max[0]) = (lo, hi);
            }
            else
            {
                for (var i = 0; i < chunk.Length; i++)
                {
                    var c = i % _channels;
                    _min[c] = Math.Min(_min[c], chunk[i]);
                    _max[c] = Math.Max(_max[c], chunk[i]);
                }
            }

            _framesInPixel += frames;
            FramesSeen += frames;
            samples = samples[chunk.Length..];
            if (_framesInPixel == _samplesPerPixel)
            {
                EmitPixel();
            }
        }
    }

    /// <summary>Closes the last, partial pixel (as audiowaveform does) and returns the peaks.</summary>
    public WaveformData Finish()
    {
        if (_framesInPixel > 0)
        {
            EmitPixel();
        }

        return new WaveformData(_channels, _sampleRate, _samplesPerPixel, _bits, _length, _data.ToArray());
    }

    private void EmitPixel()
    {
        for (var c = 0; c < _channels; c++)
        {
            // audiowaveform's 8-bit values are the 16-bit ones divided by 256 (truncating), so -32768..32767 maps to -128..127.
            _data.Add(_bits == 8 ? _min[c] / 256 : _min[c]);
            _data.Add(_bits == 8 ? _max[c] / 256 : _max[c]);
        }

        _length++;
        ResetPixel();
    }

    private void ResetPixel()
    {
        Array.Fill(_min, short.MaxValue);
        Array.Fill(_max, short.MinValue);
        _framesInPixel = 0;
    }
}
