using System.Security.Claims;
using Kiln.Core;
using Kiln.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;

namespace Kiln.Jobs;

internal static class JobEndpoints
{
    public static RouteGroupBuilder MapJobs(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/jobs").WithTags("Jobs").ProducesCommonProblems().RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapGet("/", List);
        group.MapGet("/{id:guid}", Get);
        group.MapPost("/{id:guid}/cancel", Cancel).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{id:guid}/pause", Pause).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{id:guid}/resume", Resume).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{id:guid}/retry", Retry).ProducesProblem(StatusCodes.Status409Conflict);
        return group;
    }

    private static async Task<Results<Ok<JobPage>, ProblemHttpResult>> List(
        ClaimsPrincipal user,
        NpgsqlDataSource dataSource,
        CancellationToken ct,
        string? state = null,
        string? kind = null,
        string? queue = null,
        Guid? assetId = null,
        Guid? batchId = null,
        string sort = "-createdAt",
        int page = 1,
        int pageSize = 50)
    {
        if (state is not null && !JobState.All.Contains(state))
        {
            return Problems.BadRequest("jobs.bad_state", $"state must be one of {string.Join(", ", JobState.All)}.");
        }

        if (!JobQuery.SortColumns.ContainsKey(sort.TrimStart('-', '+')))
        {
            return Problems.BadRequest("jobs.bad_sort", $"sort must be one of {string.Join(", ", JobQuery.SortColumns.Keys)}, optionally prefixed with '-'.");
        }

        if (Paging.Check(page, pageSize, "jobs.bad_page") is { } badPage)
        {
            return badPage;
        }

        var filter = new JobFilter(state, kind, queue, assetId, batchId, user.OwnerScope(), sort, page, pageSize);
        return TypedResults.Ok(await JobQuery.ListAsync(dataSource, filter, ct));
    }

    private static async Task<Results<Ok<Job>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, JobStore jobs, CancellationToken ct) =>
        await jobs.GetDetailAsync(id, user.OwnerScope(), ct) is { } job ? TypedResults.Ok(job) : Problems.NotFound("Job");

    private static Task<Results<Ok<Job>, ProblemHttpResult>> Cancel(Guid id, ClaimsPrincipal user, JobCommands commands, JobStore jobs, CancellationToken ct) =>
        Run(commands.CancelAsync(id, user.OwnerScope(), ct), id, user, jobs, ct);

    private static Task<Results<Ok<Job>, ProblemHttpResult>> Pause(Guid id, ClaimsPrincipal user, JobCommands commands, JobStore jobs, CancellationToken ct) =>
        Run(commands.PauseAsync(id, user.OwnerScope(), ct), id, user, jobs, ct);

    private static Task<Results<Ok<Job>, ProblemHttpResult>> Resume(Guid id, ClaimsPrincipal user, JobCommands commands, JobStore jobs, CancellationToken ct) =>
        Run(commands.ResumeAsync(id, user.OwnerScope(), ct), id, user, jobs, ct);

    private static Task<Results<Ok<Job>, ProblemHttpResult>> Retry(Guid id, ClaimsPrincipal user, JobCommands commands, JobStore jobs, CancellationToken ct) =>
        Run(commands.RetryAsync(id, user.OwnerScope(), ct), id, user, jobs, ct);

    private static async Task<Results<Ok<Job>, ProblemHttpResult>> Run(
        Task<CommandResult> command, Guid id, ClaimsPrincipal user, JobStore jobs, CancellationToken ct)
    {
        var result = await command;
        return result.Outcome switch
        {
            CommandOutcome.NotFound => Problems.NotFound("Job"),
            CommandOutcome.Conflict => Problems.Result(StatusCodes.Status409Conflict, result.ErrorCode!, result.Message!, new Dictionary<string, object?> { ["state"] = result.State }),
            _ => await jobs.GetDetailAsync(id, user.OwnerScope(), ct) is { } job ? TypedResults.Ok(job) : Problems.NotFound("Job"),
        };
    }
}
