using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Media.Transcription;
using Kiln.Pipelines;
using Kiln.Processing;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Transcription;

/// <summary>
/// <c>audio.transcribe</c>: extracts the speech track (16 kHz mono, chunked when the provider caps request size),
/// transcribes each chunk, stitches segment times back onto the media's clock and writes <c>transcript.json</c>
/// (and a WebVTT copy) as TRANSCRIPT derivatives. The transcripts table is filled when the job completes on the
/// server (<see cref="TranscriptCompletionHook"/>), so a remote worker needs no database. A video without sound
/// completes with <c>skipped</c>, as <c>audio.waveform</c> does.
/// </summary>
internal sealed partial class TranscribeHandler(IServiceProvider services, IOptions<TranscriptionOptions> options, Kiln.Media.FFmpeg.FfmpegRunner runner, IOptions<AvOptions> av)
    : IJobHandler
{
    public const string TranscriptFile = "transcript.json";

    public string Kind => TranscriptionExtensions.AudioTranscribe;

    /// <summary>The spoken language when known (otherwise the provider detects it) and whether to replace a hand-edited transcript.</summary>
    public static TranscribeParams ReadParams(JobParams p) => new(
        p.OptionalText("language", LanguageCode(), "an ISO-639-1 code such as 'en'"),
        p.Bool("replaceManual", false));

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var (language, replaceManual) = context.ReadParams(ReadParams);
        if (options.Value.EffectiveProvider == "none" || services.GetService<ITranscriptionProvider>() is not { } provider)
        {
            throw new JobFailedException("provider.not_configured", "No transcription provider is configured (Kiln:Transcription:Provider is none).");
        }

        SpeechAudioResult speech;
        try
        {
            speech = await new SpeechAudio(runner, av.Value.Limits).ExtractAsync(
                context.RequireInput(), Path.Combine(context.WorkDirectory, "speech"), provider.MaxRequestBytes,
                new ScaledProgress(context.Progress, 0, 10), cancellationToken);
        }
        catch (MediaException e) when (e.Code == "media.no_audio" && context.Asset?.Kind == "video")
        {
            return new JobOutcome(new JsonObject { ["skipped"] = "The video has no audio track." });
        }

        var pieces = new List<(double Offset, IReadOnlyList<TranscriptSegment> Segments)>();
        string? detected = null;
        for (var i = 0; i < speech.Chunks.Count; i++)
        {
            var chunk = speech.Chunks[i];
            var part = await provider.TranscribeAsync(chunk.Path, language, cancellationToken);
            detected ??= part.Language;
            // A provider that returns text without segments still gets one cue spanning its chunk.
            IReadOnlyList<TranscriptSegment> segments = part.Segments.Count > 0 || part.Text.Length == 0
                ? part.Segments : [new TranscriptSegment(0, chunk.Length, part.Text)];
            pieces.Add((chunk.Offset, segments));
            context.Progress.Report(new JobProgress(10 + (90.0 * (i + 1) / speech.Chunks.Count), "transcribe"));
            File.Delete(chunk.Path);
        }

        var stitched = Segments.Stitch(pieces, speech.Duration > 0 ? speech.Duration : null);
        var text = Segments.JoinText(stitched);
        var document = new TranscriptDocument(language ?? detected, text, stitched, provider.Name, provider.Model, replaceManual);
        await File.WriteAllTextAsync(Path.Combine(context.OutputDirectory, TranscriptFile), JsonSerializer.Serialize(document, TranscriptStore.Json), cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(context.OutputDirectory, "transcript.vtt"), SubtitleWriter.ToVtt(stitched), cancellationToken);
        return new JobOutcome(
            new JsonObject
            {
                ["provider"] = provider.Name,
                ["model"] = provider.Model,
                ["language"] = document.Language,
                ["duration"] = Math.Round(speech.Duration, 3),
                ["chunks"] = speech.Chunks.Count,
                ["segments"] = stitched.Count,
                ["words"] = text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length,
                ["replaceManual"] = replaceManual,
            },
            [
                new OutputFile("TRANSCRIPT", TranscriptFile, "application/json", Variant: "json", Duration: speech.Duration),
                new OutputFile("TRANSCRIPT", "transcript.vtt", "text/vtt", Variant: "vtt", Duration: speech.Duration),
            ]);
    }

    [GeneratedRegex("^[a-z]{2,3}$", RegexOptions.CultureInvariant)]
    private static partial Regex LanguageCode();

    /// <summary>Maps the extraction's 0–100 onto a slice of the job's progress.</summary>
    private sealed class ScaledProgress(IProgress<JobProgress> target, double from, double to) : IProgress<MediaProgress>
    {
        public void Report(MediaProgress value) => target.Report(new JobProgress(from + ((to - from) * value.Percent / 100), value.Stage));
    }
}

internal sealed record TranscribeParams(string? Language, bool ReplaceManual);

/// <summary>What <c>transcript.json</c> holds; the completion hook turns it into a transcripts row.</summary>
internal sealed record TranscriptDocument(
    string? Language, string Text, IReadOnlyList<TranscriptSegment> Segments, string Provider, string? Model, bool ReplaceManual);
