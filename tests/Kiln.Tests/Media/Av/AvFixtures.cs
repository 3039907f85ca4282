using System.Collections.Concurrent;
using Kiln.Media.FFmpeg;
using Kiln.Tests.Media.Av;

[assembly: AssemblyFixture(typeof(AvFixtures))]

namespace Kiln.Tests.Media.Av;

/// <summary>
/// Small media files generated with lavfi on first use and shared by every audio/video test class. Each one is
/// created once, on demand, so a filtered run only pays for the fixtures it touches.
/// </summary>
public sealed class AvFixtures : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _files = new(StringComparer.Ordinal);

    public AvFixtures()
    {
        Root = Path.Combine(Path.GetTempPath(), "kiln-av-tests-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public FfmpegRunner Runner { get; } = new();

    /// <summary>4 s 320x240 25 fps H.264 with a 440 Hz mono AAC track.</summary>
    public Task<string> VideoWithAudio => Make("video.mp4", Testsrc("320x240", 4) + Sine(4) + H264() + Aac);

    /// <summary>12 s 160x120, longer than a preview.</summary>
    public Task<string> LongVideo => Make("long.mp4", Testsrc("160x120", 12) + Sine(12) + H264() + Aac);

    public Task<string> VideoWithoutAudio => Make("silent.mp4", Testsrc("320x240", 3) + H264());

    /// <summary>1.5 s: shorter than the 2 s thumbnail time.</summary>
    public Task<string> ShortVideo => Make("short.mp4", Testsrc("320x240", 1.5) + Sine(1.5) + H264() + Aac);

    public Task<string> PortraitVideo => Make("portrait.mp4", Testsrc("240x320", 2) + Sine(2) + H264() + Aac);

    /// <summary>3 s 1280x720 with stereo audio, big enough for two HLS rungs.</summary>
    public Task<string> Video720 => Make("hd.mp4", Testsrc("1280x720", 3) + Sine(3) + H264() + Aac + " -ac 2");

    /// <summary>10 s 1080p: an HLS ladder of it runs long enough to be cancelled mid-way.</summary>
    public Task<string> Video1080Long => Make("long1080.mp4", Testsrc("1920x1080", 10) + H264(crf: 35));

    /// <summary><see cref="VideoWithAudio"/>'s streams, stream-copied with a 90° display rotation: stored 320x240, shown 240x320.</summary>
    public Task<string> RotatedVideo => MakeFrom("rotated.mp4", VideoWithAudio, src => $"-i {src} -c copy -metadata:s:v rotate=90");

    /// <summary>3 s stereo 44.1 kHz sine WAV.</summary>
    public Task<string> Wav => Make("tone.wav", "-f lavfi -i sine=frequency=440:duration=3:sample_rate=44100 -ac 2 -c:a pcm_s16le");

    /// <summary>3 s mono noise MP3 at 128 kb/s.</summary>
    public Task<string> Mp3 => Make("noise.mp3", "-f lavfi -i anoisesrc=duration=3:amplitude=0.5:sample_rate=44100 -c:a libmp3lame -b:a 128k");

    /// <summary>4 KB of random bytes with a video extension.</summary>
    public Task<string> RandomBytes => _files.GetOrAdd("random.mp4", name => new Lazy<Task<string>>(() =>
    {
        var path = Path.Combine(Root, name);
        var bytes = new byte[4096];
        new Random(42).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        return Task.FromResult(path);
    })).Value;

    /// <summary>The first third of <see cref="VideoWithAudio"/>: the moov atom (written last) is missing.</summary>
    public Task<string> TruncatedVideo => _files.GetOrAdd("truncated.mp4", name => new Lazy<Task<string>>(async () =>
    {
        var source = await VideoWithAudio;
        var bytes = await File.ReadAllBytesAsync(source);
        var path = Path.Combine(Root, name);
        await File.WriteAllBytesAsync(path, bytes.AsMemory(0, bytes.Length / 3).ToArray());
        return path;
    })).Value;

    /// <summary>A fresh empty directory for one test's outputs.</summary>
    public string NewOutputDirectory()
    {
        var dir = Path.Combine(Root, "out-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public ValueTask DisposeAsync()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }

        return ValueTask.CompletedTask;
    }

    private const string Aac = "-c:a aac -b:a 64k ";

    // Inputs first, then encoder options: ffmpeg applies options to the next input or output that follows them.
    private static string Testsrc(string size, double seconds) =>
        $"-f lavfi -i testsrc2=size={size}:rate=25:duration={Inv(seconds)} ";

    private static string Sine(double seconds) => $"-f lavfi -i sine=frequency=440:duration={Inv(seconds)} ";

    private static string H264(int crf = 28) => $"-c:v libx264 -preset ultrafast -crf {crf} -pix_fmt yuv420p ";

    private static string Inv(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private Task<string> Make(string name, string arguments) =>
        _files.GetOrAdd(name, n => new Lazy<Task<string>>(() => GenerateAsync(n, arguments))).Value;

    private Task<string> MakeFrom(string name, Task<string> source, Func<string, string> arguments) =>
        _files.GetOrAdd(name, n => new Lazy<Task<string>>(async () => await GenerateAsync(n, arguments(await source)))).Value;

    // The fixture arguments contain no spaces inside values, so splitting on spaces is safe here (and only here).
    private async Task<string> GenerateAsync(string name, string arguments)
    {
        var path = Path.Combine(Root, name);
        var args = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        args.AddRange(["-y", path]);
        await Runner.RunAsync(args, null, "fixture", null, TestContext.Current.CancellationToken);
        return path;
    }
}
