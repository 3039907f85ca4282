using System.ComponentModel.DataAnnotations;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kiln.Queue;

internal static class QueueEndpoints
{
    public static RouteGroupBuilder MapQueues(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/queues").WithTags("Queues").ProducesCommonProblems().RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapGet("/", List);
        group.MapGet("/{name}", Get);
        var admin = group.MapGroup("/").RequireAuthorization(SecurityExtensions.AdminPolicy).ProducesProblem(StatusCodes.Status403Forbidden);
        admin.MapPost("/{name}/pause", Pause);
        admin.MapPost("/{name}/resume", Resume);
        admin.MapPost("/{name}/retry-failed", RetryFailed);
        admin.MapPost("/{name}/clean", Clean);
        admin.MapPatch("/{name}", Update);
        return group;
    }

    private static async Task<Ok<List<QueueStats>>> List(QueueStore queues, CancellationToken ct) =>
        TypedResults.Ok(await queues.StatsAsync(null, ct));

    private static async Task<Results<Ok<QueueStats>, ProblemHttpResult>> Get(string name, QueueStore queues, CancellationToken ct)
    {
        var stats = await queues.StatsAsync(name, ct);
        return stats.Count == 1 ? TypedResults.Ok(stats[0]) : Problems.NotFound($"Queue '{name}'");
    }

    private static Task<Results<Ok<QueueStats>, ProblemHttpResult>> Pause(string name, QueueStore queues, CancellationToken ct) =>
        SetPaused(name, true, queues, ct);

    private static Task<Results<Ok<QueueStats>, ProblemHttpResult>> Resume(string name, QueueStore queues, CancellationToken ct) =>
        SetPaused(name, false, queues, ct);

    private static async Task<Results<Ok<QueueStats>, ProblemHttpResult>> SetPaused(string name, bool paused, QueueStore queues, CancellationToken ct)
    {
        if (!await queues.SetPausedAsync(name, paused, ct))
        {
            return Problems.NotFound($"Queue '{name}'");
        }

        return TypedResults.Ok((await queues.StatsAsync(name, ct))[0]);
    }

    private static async Task<Results<Ok<CountResponse>, ProblemHttpResult>> RetryFailed(string name, QueueStore queues, QueueWakeups wakeups, CancellationToken ct)
    {
        if ((await queues.StatsAsync(name, ct)).Count == 0)
        {
            return Problems.NotFound($"Queue '{name}'");
        }

        var count = await queues.RetryFailedAsync(name, ct);
        wakeups.Wake(name);
        return TypedResults.Ok(new CountResponse(count));
    }

    private static async Task<Results<Ok<CountResponse>, ProblemHttpResult>> Clean(
        string name, QueueStore queues, CancellationToken ct, string state = JobState.Completed, double graceSeconds = 0)
    {
        if (state is not (JobState.Completed or JobState.Failed or JobState.Cancelled))
        {
            return Problems.BadRequest("queue.bad_state", "state must be completed, failed or cancelled.");
        }

        if (graceSeconds < 0 || !double.IsFinite(graceSeconds))
        {
            return Problems.BadRequest("queue.bad_grace", "graceSeconds must be a non-negative number.");
        }

        if ((await queues.StatsAsync(name, ct)).Count == 0)
        {
            return Problems.NotFound($"Queue '{name}'");
        }

        return TypedResults.Ok(new CountResponse(await queues.CleanAsync(name, state, TimeSpan.FromSeconds(graceSeconds), ct)));
    }

    private static async Task<Results<Ok<QueueStats>, ProblemHttpResult>> Update(string name, QueueUpdateRequest request, QueueStore queues, CancellationToken ct)
    {
        var errors = new List<ValidationResult>();
        if (!Validator.TryValidateObject(request, new ValidationContext(request), errors, validateAllProperties: true))
        {
            return Problems.BadRequest("queue.invalid_settings", string.Join(" ", errors.Select(e => e.ErrorMessage)));
        }

        if (!await queues.UpdateAsync(name, new QueueSettings(request.Concurrency, request.RateMax, request.RatePeriodMs, request.KeepCompleted, request.KeepFailed), ct))
        {
            return Problems.NotFound($"Queue '{name}'");
        }

        return TypedResults.Ok((await queues.StatsAsync(name, ct))[0]);
    }
}

internal sealed record CountResponse(int Count);

/// <summary>A partial update of a queue's limits; omitted fields stay as they are. 0 turns a limit off.</summary>
internal sealed record QueueUpdateRequest(
    [property: Range(0, 100_000)] int? Concurrency,
    [property: Range(0, 10_000_000)] int? RateMax,
    [property: Range(1, 86_400_000)] int? RatePeriodMs,
    [property: Range(0, 10_000_000)] int? KeepCompleted,
    [property: Range(0, 10_000_000)] int? KeepFailed);
