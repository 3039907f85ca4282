using System.Security.Claims;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Security;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Kiln.Assets;

/// <summary>A batch over assets that already exist: <c>{"assetIds": [...], "settings": {...}}</c>.</summary>
internal sealed record BatchRequest(Guid[]? AssetIds, JsonObject? Settings);

internal static class BatchEndpoints
{
    private const int MaxAssetsPerBatch = 1000;

    public static RouteGroupBuilder MapBatches(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/batches").WithTags("Batches").ProducesCommonProblems().RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapPost("/", Create);
        group.MapPost("/", Upload).Accepts<IFormFileCollection>("multipart/form-data")
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .DisableAntiforgery().DisableRequestTimeout();
        group.MapGet("/{id:guid}", Get);
        return group;
    }

    private static async Task<Results<Accepted<UploadResponse>, ProblemHttpResult>> Create(
        BatchRequest request, ClaimsPrincipal user, AssetStore assets, BatchStore batches, AssetIngest ingest, PipelinePlanner planner, CancellationToken ct)
    {
        if (request.AssetIds is not { Length: > 0 } ids)
        {
            return Problems.BadRequest("batch.no_assets", "assetIds must list at least one asset (or upload files with POST /api/uploads?batch=true).");
        }

        if (ids.Length > MaxAssetsPerBatch)
        {
            return Problems.BadRequest("batch.too_many_assets", $"At most {MaxAssetsPerBatch} assets per batch.");
        }

        if (planner.Validate(request.Settings) is { } error)
        {
            return Problems.BadRequest(error.Code("batch"), error.Message);
        }

        var found = new List<Asset>();
        foreach (var id in ids.Distinct())
        {
            if (await assets.GetAsync(id, user.OwnerScope(), ct) is not { } asset)
            {
                return Problems.NotFound($"Asset {id}");
            }

            if (planner.CheckMediaKind(asset.Kind, request.Settings) is { } mismatch)
            {
                return Problems.BadRequest("batch.job_not_for_media", $"Asset {id}: {mismatch}");
            }

            found.Add(asset);
        }

        var batchId = await batches.CreateAsync(user.KeyId(), request.Settings, ct);
        var planned = await ingest.PlanForAssetsAsync(found, user.KeyId(), batchId, request.Settings, ct);
        return TypedResults.Accepted($"/api/batches/{batchId}", new UploadResponse(planned, batchId));
    }

    /// <summary>A batch of new files: the same multipart body as <c>POST /api/uploads</c>, followed as one batch.</summary>
    private static Task<Results<Accepted<UploadResponse>, ProblemHttpResult>> Upload(
        HttpContext http, ClaimsPrincipal user, [AsParameters] UploadServices services, CancellationToken ct) =>
        AssetEndpoints.ReceiveAsync(http, user, services, batch: true, ct);

    private static async Task<Results<Ok<BatchSummary>, ProblemHttpResult>> Get(Guid id, ClaimsPrincipal user, BatchStore batches, CancellationToken ct) =>
        await batches.GetAsync(id, user.OwnerScope(), ct) is { } batch ? TypedResults.Ok(batch) : Problems.NotFound("Batch");
}
