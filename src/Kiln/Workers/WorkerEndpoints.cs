using System.Security.Claims;
using Kiln.Core;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Security;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Kiln.Workers;

internal sealed record CreateWorkerTokenRequest(string Name);

internal sealed record CreatedWorkerToken(Guid Id, string Name, string Prefix, string Token, DateTimeOffset CreatedAt);

internal sealed record UploadedOutput(string Path, long Size);

/// <summary>
/// Remote workers: the WebSocket they connect to (worker tokens), the per-job file transfers (worker token plus
/// the lease's job token in <c>X-Kiln-Job-Token</c>), and the admin's view and token management.
/// </summary>
internal static class WorkerEndpoints
{
    public const string Prefix = "/api/workers";
    public const string JobTokenHeader = "X-Kiln-Job-Token";

    private const string Source = "remote_worker_http";

    public static RouteGroupBuilder MapWorkers(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix).WithTags("Workers");
        group.MapGet("/", List).RequireAuthorization(SecurityExtensions.AdminPolicy);

        var tokens = group.MapGroup("/tokens").RequireAuthorization(SecurityExtensions.AdminPolicy);
        tokens.MapPost("/", CreateToken);
        tokens.MapGet("/", ListTokens);
        tokens.MapDelete("/{id:guid}", RevokeToken);

        // Workers are few and trusted by an admin; their file traffic (HLS segments) must not trip per-key limits.
        var worker = group.MapGroup("/").RequireAuthorization(SecurityExtensions.WorkerPolicy).DisableRateLimiting();
        worker.MapGet("/connect", Connect).ExcludeFromDescription();
        worker.MapGet("/jobs/{jobId:guid}/input", DownloadInput);
        worker.MapPut("/jobs/{jobId:guid}/outputs/{**path}", UploadOutput).DisableRequestTimeout();
        return group;
    }

    private static async Task<Ok<List<WorkerView>>> List(WorkerStore store, IOptions<RemoteWorkerOptions> options, CancellationToken ct)
    {
        var silence = TimeSpan.FromSeconds(options.Value.HeartbeatTimeoutSeconds + options.Value.HeartbeatIntervalSeconds);
        return TypedResults.Ok(await store.ListLiveAsync(silence, ct));
    }

    private static async Task<Results<Created<CreatedWorkerToken>, ProblemHttpResult>> CreateToken(
        CreateWorkerTokenRequest request, ApiKeyStore keys, CancellationToken ct)
    {
        var name = request.Name?.Trim() ?? "";
        if (name.Length is 0 or > 100)
        {
            return Problems.BadRequest("workers.bad_name", "name must be 1 to 100 characters.");
        }

        var created = await keys.CreateAsync(name, Roles.Worker, ct);
        var info = created.Info;
        return TypedResults.Created($"{Prefix}/tokens/{info.Id}", new CreatedWorkerToken(info.Id, info.Name, info.Prefix, created.Secret, info.CreatedAt));
    }

    private static async Task<Ok<List<ApiKeyInfo>>> ListTokens(ApiKeyStore keys, CancellationToken ct) =>
        TypedResults.Ok(await keys.ListAsync(Roles.Worker, ct));

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeToken(
        Guid id, ApiKeyStore keys, RemoteWorkerRegistry registry, CancellationToken ct)
    {
        // Only worker tokens go through here; an admin key revoked by mistake would lock the admin out.
        if (!(await keys.ListAsync(Roles.Worker, ct)).Any(k => k.Id == id && k.RevokedAt is null)
            || await keys.RevokeAsync(id.ToString(), ct) is null)
        {
            return Problems.NotFound("Worker token");
        }

        registry.Revoke(id);
        return TypedResults.NoContent();
    }

    private static async Task<Results<EmptyHttpResult, ProblemHttpResult>> Connect(
        HttpContext http, ClaimsPrincipal user, RemoteWorkerRegistry registry, WorkerSessionFactory sessions, CancellationToken ct)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            return Problems.BadRequest("workers.websocket_required", "Connect with a WebSocket (kiln worker does).");
        }

        if (registry.IsRevoked(user.KeyId()))
        {
            return Problems.Result(StatusCodes.Status401Unauthorized, "auth.revoked", "This worker token was revoked.");
        }

        if (!registry.Accepting)
        {
            return Problems.Result(StatusCodes.Status503ServiceUnavailable, "workers.stopping", "The server is shutting down; connect to another node or retry.");
        }

        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        using var session = sessions.Create(socket, user.KeyId(), http.Connection.RemoteIpAddress?.ToString());
        registry.Add(session);
        try
        {
            await session.RunAsync(ct);
        }
        finally
        {
            registry.Remove(session);
        }

        return TypedResults.Empty;
    }

    private static async Task<Results<PhysicalFileHttpResult, ProblemHttpResult>> DownloadInput(
        Guid jobId, HttpRequest request, JobTokens tokens, WorkerStore store, BlobStore blobs, KilnMetrics metrics, CancellationToken ct)
    {
        var (input, _, problem) = await AuthorizeAsync(jobId, request, tokens, store, metrics, ct);
        if (problem is not null)
        {
            return problem;
        }

        if (input!.AssetPath is null)
        {
            return Problems.NotFound("Job input");
        }

        return TypedResults.PhysicalFile(blobs.Resolve(input.AssetPath), input.ContentType ?? "application/octet-stream", enableRangeProcessing: true);
    }

    private static async Task<Results<Ok<UploadedOutput>, ProblemHttpResult>> UploadOutput(
        Guid jobId,
        string path,
        HttpContext http,
        JobTokens tokens,
        WorkerStore store,
        BlobStore blobs,
        KilnMetrics metrics,
        IOptions<RemoteWorkerOptions> options,
        CancellationToken ct)
    {
        if (!WorkerProtocol.IsSafeRelativePath(path))
        {
            metrics.Rejected(Source, "invalid_output_path");
            return Problems.BadRequest("workers.bad_path", "The output path must be relative, '/'-separated, without '.' or '..' segments.");
        }

        var (_, leaseId, problem) = await AuthorizeAsync(jobId, http.Request, tokens, store, metrics, ct);
        if (problem is not null)
        {
            return problem;
        }

        var limit = options.Value.MaxOutputBytes;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = limit;
        }

        if (http.Request.ContentLength > limit)
        {
            return Problems.Result(StatusCodes.Status413PayloadTooLarge, "workers.output_too_large", $"An output may be at most {limit} bytes.");
        }

        var staging = Path.GetFullPath(new JobDirectories(blobs.JobsTemp, jobId, leaseId).OutputPath);
        var target = Path.GetFullPath(Path.Combine(staging, path));
        if (!target.StartsWith(staging + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return Problems.BadRequest("workers.bad_path", "The output path leaves the job's output directory.");
        }

        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var temp = $"{target}.{Guid.NewGuid():N}.part";
        try
        {
            long size;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous))
            {
                await http.Request.Body.CopyToAsync(file, ct);
                size = file.Length;
            }

            File.Move(temp, target, overwrite: true);
            return TypedResults.Ok(new UploadedOutput(path, size));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Problems.Result(StatusCodes.Status413PayloadTooLarge, "workers.output_too_large", $"An output may be at most {limit} bytes.");
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Checks the job token against the job and that its lease is still held.</summary>
    private static async Task<(LeasedInput? Input, Guid LeaseId, ProblemHttpResult? Problem)> AuthorizeAsync(
        Guid jobId, HttpRequest request, JobTokens tokens, WorkerStore store, KilnMetrics metrics, CancellationToken ct)
    {
        if (await tokens.ReadAsync(jobId, request.Headers[JobTokenHeader].ToString(), ct) is not { } leaseId)
        {
            metrics.Rejected(Source, "bad_job_token");
            return (null, default, Problems.Result(StatusCodes.Status403Forbidden, "workers.bad_job_token", $"{JobTokenHeader} is missing or not valid for this job."));
        }

        if (await store.FindLeaseAsync(jobId, leaseId, ct) is not { } input)
        {
            metrics.Rejected(Source, "lease_not_held");
            return (null, leaseId, Problems.Conflict("workers.lease_not_held", "The lease this token was issued for is no longer held."));
        }

        return (input, leaseId, null);
    }
}
