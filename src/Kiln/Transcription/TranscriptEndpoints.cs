using System.Security.Claims;
using Kiln.Assets;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Media.Transcription;
using Kiln.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Kiln.Transcription;

/// <summary>A person's edit: the text and, optionally, its timed segments.</summary>
internal sealed record TranscriptEdit(string? Text, List<TranscriptSegment>? Segments, string? Language);

internal sealed record TranscriptView(TranscriptVersion Version, string Text, IReadOnlyList<TranscriptSegment> Segments);

/// <summary>Transcript versions of an asset; owner isolation as for assets (another owner's asset is a 404).</summary>
internal static class TranscriptEndpoints
{
    public static RouteGroupBuilder MapTranscripts(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/assets/{id:guid}/transcripts").WithTags("Transcripts").ProducesCommonProblems()
            .RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapGet("", List);
        group.MapGet("/active", Active);
        group.MapPut("", Edit);
        group.MapPost("/{version:int}/activate", Activate);
        return group;
    }

    private static async Task<Results<Ok<List<TranscriptVersion>>, ProblemHttpResult>> List(
        Guid id, ClaimsPrincipal user, AssetStore assets, TranscriptStore transcripts, CancellationToken ct) =>
        await assets.GetAsync(id, user.OwnerScope(), ct) is null
            ? Problems.NotFound("Asset")
            : TypedResults.Ok(await transcripts.ListAsync(id, ct));

    /// <summary><c>?format=json|txt|vtt|srt</c>; json by default.</summary>
    private static async Task<IResult> Active(
        Guid id, ClaimsPrincipal user, AssetStore assets, TranscriptStore transcripts, CancellationToken ct, string? format = null)
    {
        format = (format ?? "json").ToLowerInvariant();
        if (format is not ("json" or "txt" or "vtt" or "srt"))
        {
            return Problems.BadRequest("transcript.bad_format", "format must be json, txt, vtt or srt.");
        }

        if (await assets.GetAsync(id, user.OwnerScope(), ct) is null)
        {
            return Problems.NotFound("Asset");
        }

        if (await transcripts.GetActiveAsync(id, ct) is not { } t)
        {
            return Problems.NotFound("Transcript");
        }

        return format switch
        {
            "txt" => TypedResults.Text(SubtitleWriter.ToText(t.Text), "text/plain; charset=utf-8"),
            "vtt" => TypedResults.Text(SubtitleWriter.ToVtt(t.Segments), "text/vtt; charset=utf-8"),
            "srt" => TypedResults.Text(SubtitleWriter.ToSrt(t.Segments), "application/x-subrip; charset=utf-8"),
            _ => TypedResults.Ok(new TranscriptView(t.Info, t.Text, t.Segments)),
        };
    }

    private static async Task<Results<Ok<TranscriptVersion>, ProblemHttpResult>> Edit(
        Guid id, TranscriptEdit edit, ClaimsPrincipal user, AssetStore assets, TranscriptStore transcripts, IJobEventSink events,
        IOptions<TranscriptionOptions> limits, CancellationToken ct)
    {
        if (await assets.GetAsync(id, user.OwnerScope(), ct) is not { } asset)
        {
            return Problems.NotFound("Asset");
        }

        var segments = edit.Segments ?? [];
        var text = string.IsNullOrWhiteSpace(edit.Text) ? Segments.JoinText(segments) : edit.Text.Trim();
        if (Validate(text, segments, limits.Value.MaxTextChars, limits.Value.MaxSegments) is { } error)
        {
            return Problems.BadRequest("transcript.invalid", error);
        }

        var version = await transcripts.AddManualAsync(
            id, new NewTranscript(TranscriptSource.Manual, edit.Language, text, segments, null, null, null, user.KeyId()), ct);
        events.Publish(TranscriptEvents.Updated(id, asset.OwnerId, id, version));
        return TypedResults.Ok(version);
    }

    private static async Task<Results<Ok<List<TranscriptVersion>>, ProblemHttpResult>> Activate(
        Guid id, int version, ClaimsPrincipal user, AssetStore assets, TranscriptStore transcripts, IJobEventSink events, CancellationToken ct)
    {
        if (await assets.GetAsync(id, user.OwnerScope(), ct) is not { } asset)
        {
            return Problems.NotFound("Asset");
        }

        if (!await transcripts.ActivateAsync(id, version, ct))
        {
            return Problems.NotFound("Transcript version");
        }

        var versions = await transcripts.ListAsync(id, ct);
        events.Publish(TranscriptEvents.Updated(id, asset.OwnerId, id, versions.First(v => v.Version == version)));
        return TypedResults.Ok(versions);
    }

    /// <summary>A person's edit must be something a player can show: bounded text, ordered cues inside non-negative times.</summary>
    internal static string? Validate(string text, IReadOnlyList<TranscriptSegment> segments, int maxTextChars, int maxSegments)
    {
        if (text.Length == 0)
        {
            return "text or segments is required.";
        }

        if (text.Length > maxTextChars || segments.Count > maxSegments)
        {
            return $"A transcript may have at most {maxTextChars} characters and {maxSegments} segments.";
        }

        var last = 0.0;
        for (var i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            if (!double.IsFinite(s.Start) || !double.IsFinite(s.End) || s.Start < last || s.End < s.Start || s.Text is null)
            {
                return $"segments[{i}]: start and end must be finite, end ≥ start, and starts must not go backwards.";
            }

            last = s.Start;
        }

        return null;
    }
}
