using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Queue;
using Npgsql;

namespace Kiln.Transcription;

/// <summary>Turns a completed <c>audio.transcribe</c> job's <c>transcript.json</c> into a new AUTO version.</summary>
internal sealed class TranscriptCompletionHook : IJobCompletionHook
{
    public string Kind => TranscriptionExtensions.AudioTranscribe;

    public async Task<IReadOnlyList<JobEvent>> OnCompletedAsync(CompletedJob job, NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct)
    {
        var path = Path.Combine(job.PublishedDirectory, TranscribeHandler.TranscriptFile);
        if (!File.Exists(path))
        {
            return [];
        }

        TranscriptDocument document;
        await using (var stream = File.OpenRead(path))
        {
            document = await JsonSerializer.DeserializeAsync<TranscriptDocument>(stream, TranscriptStore.Json, ct)
                ?? throw new InvalidDataException($"{TranscribeHandler.TranscriptFile} of job {job.JobId} is empty.");
        }

        var version = await TranscriptStore.AddAsync(
            conn,
            tx,
            job.AssetId,
            new NewTranscript(TranscriptSource.Auto, document.Language, document.Text, document.Segments, document.Provider, document.Model, job.JobId, job.OwnerId),
            document.ReplaceManual,
            ct);
        return [TranscriptEvents.Updated(job.JobId, job.OwnerId, job.AssetId, version)];
    }
}

/// <summary>The hub's <c>transcript-updated</c> event, built in one place for AUTO runs and people's edits.</summary>
internal static class TranscriptEvents
{
    public const string Type = JobEventType.TranscriptUpdated;

    /// <param name="eventKey">The job the event travels under: the transcription job, or the asset id for an edit.</param>
    public static JobEvent Updated(Guid eventKey, Guid? ownerId, Guid assetId, TranscriptVersion version) =>
        new(Type, eventKey, ownerId, new JsonObject
        {
            ["jobId"] = eventKey,
            ["assetId"] = assetId,
            ["version"] = version.Version,
            ["source"] = version.Source,
            ["isActive"] = version.IsActive,
        });
}
