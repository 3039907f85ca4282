using System.Diagnostics;
using Kiln.Media.FFmpeg;
using Kiln.Media.Transcription;
using Kiln.Providers;
using Kiln.Transcription;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kiln.Bench;

/// <summary>
/// The chunked OpenAI transcription path against one request, on one local server speaking the
/// <c>/v1/audio/transcriptions</c> wire format (it reads each upload to the end and answers a fixed verbose_json):
/// the speech extraction plus every request, as <c>audio.transcribe</c> runs them, in alternating rounds. A third
/// row replays the first build's way of chunking (each chunk cut from the source by its own ffmpeg run with
/// output-side seeking) to show what the single decode saves.
/// </summary>
internal sealed class TranscribeChunkBenchmark : IBenchmark
{
    private const string Answer = """
        {"task":"transcribe","language":"english","duration":1.0,"text":" hello","segments":[{"id":0,"seek":0,"start":0.0,"end":1.0,"text":" hello"}]}
        """;

    public string Name => "transcribe-chunks";

    public string Description => "Chunked OpenAI path vs one request on a local server [--minutes 30] [--rounds 3] [--cap-mb 25]";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        var minutes = AvBench.IntOption(args, "--minutes", 30);
        var rounds = AvBench.IntOption(args, "--rounds", 3);
        var cap = AvBench.IntOption(args, "--cap-mb", 25) * 1024L * 1024;
        var input = await AvBench.InputAsync(
            $"speechlike-{minutes}min.mp3",
            ["-f", "lavfi", "-i", $"anoisesrc=duration={minutes * 60}:amplitude=0.3:sample_rate=44100", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k"],
            cancellationToken);

        await using var server = await StartServerAsync(cancellationToken);
        var url = server.Urls.First();
        var provider = new OpenAiTranscriptionProvider(
            new HttpClient { Timeout = Timeout.InfiniteTimeSpan },
            Options.Create(new TranscriptionOptions { OpenAi = new OpenAiTranscriptionOptions { BaseUrl = url + "/v1", ApiKey = "sk-bench", Model = "whisper-1" } }),
            new ProviderGate(TimeProvider.System),
            TimeProvider.System);
        var speech = new SpeechAudio(new FfmpegRunner());
        var work = Path.Combine(AvBench.WorkDirectory, "transcribe-chunks");

        var modes = new (string Name, Func<string, Task<int>> Run)[]
        {
            ("one request (no cap)", dir => TranscribeAsync(speech, provider, input, dir, null, cancellationToken)),
            ($"chunked, {cap / 1048576} MiB cap (single decode, WavChunks)", dir => TranscribeAsync(speech, provider, input, dir, cap, cancellationToken)),
            ($"chunked, {cap / 1048576} MiB cap (first build: one ffmpeg seek per chunk)", dir => SeekPerChunkAsync(provider, input, dir, cap, cancellationToken)),
        };
        var results = modes.Select(_ => (Wall: new List<double>(), Cpu: new List<double>(), Requests: 0)).ToArray();
        await TranscribeAsync(speech, provider, input, work, cap, cancellationToken); // warm-up: JIT, file cache
        for (var round = 0; round < rounds; round++)
        {
            for (var m = 0; m < modes.Length; m++)
            {
                var (self0, children0) = AvBench.CpuTimes();
                var watch = Stopwatch.StartNew();
                var requests = await modes[m].Run(work);
                var wall = watch.Elapsed.TotalSeconds;
                var (self1, children1) = AvBench.CpuTimes();
                results[m].Wall.Add(wall);
                results[m].Cpu.Add((self1 - self0 + children1 - children0).TotalSeconds);
                results[m].Requests = requests;
            }
        }

        Console.WriteLine($"{minutes} min MP3, {rounds} alternating rounds, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine("| path | requests | median wall s | median CPU s (Kiln + ffmpeg + server) | wall vs one request |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        var baseline = AvBench.Median(results[0].Wall);
        for (var m = 0; m < modes.Length; m++)
        {
            var wall = AvBench.Median(results[m].Wall);
            Console.WriteLine($"| {modes[m].Name} | {results[m].Requests} | {AvBench.F(wall)} | {AvBench.F(AvBench.Median(results[m].Cpu))} | {AvBench.F(wall / baseline)}× |");
        }

        Directory.Delete(work, recursive: true);
        return 0;
    }

    private static async Task<int> TranscribeAsync(SpeechAudio speech, OpenAiTranscriptionProvider provider, string input, string dir, long? cap, CancellationToken ct)
    {
        var extracted = await speech.ExtractAsync(input, dir, cap, null, ct);
        foreach (var chunk in extracted.Chunks)
        {
            await provider.TranscribeAsync(chunk.Path, null, ct);
            File.Delete(chunk.Path);
        }

        return extracted.Chunks.Count;
    }

    private static async Task<int> SeekPerChunkAsync(OpenAiTranscriptionProvider provider, string input, string dir, long cap, CancellationToken ct)
    {
        Directory.CreateDirectory(dir);
        var duration = double.Parse(
            (await RunAsync("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", input], ct)).Trim(),
            System.Globalization.CultureInfo.InvariantCulture);
        var seconds = SpeechAudio.ChunkSeconds(cap)!.Value;
        var count = (int)Math.Ceiling(duration / seconds);
        for (var i = 0; i < count; i++)
        {
            var path = Path.Combine(dir, $"seek-{i:D4}.wav");
            var offset = (i * seconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var length = Math.Min(seconds, duration - (i * seconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            await RunAsync("ffmpeg", ["-nostdin", "-v", "error", "-i", input, "-vn", "-ss", offset, "-t", length, "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-f", "wav", "-y", path], ct);
            await provider.TranscribeAsync(path, null, ct);
            File.Delete(path);
        }

        return count;
    }

    private static async Task<string> RunAsync(string tool, string[] args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return process.ExitCode == 0 ? output : throw new InvalidOperationException($"{tool} exited {process.ExitCode}");
    }

    /// <summary>A local stand-in for the transcription endpoint: reads each multipart upload to the end, answers at once.</summary>
    private static async Task<WebApplication> StartServerAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        var app = builder.Build();
        app.MapPost("/v1/audio/transcriptions", async (HttpRequest request) =>
        {
            await request.Body.CopyToAsync(Stream.Null, request.HttpContext.RequestAborted);
            return Results.Text(Answer, "application/json");
        });
        await app.StartAsync(ct);
        return app;
    }
}
