using System.Security.Claims;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Security;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Options;

namespace Kiln.Assets;

internal sealed record UploadResponse(IReadOnlyList<IngestedAsset> Assets, Guid? BatchId);

internal sealed record AssetDetails(Asset Asset, IReadOnlyList<Derivative> Derivatives, IReadOnlyList<Job> Jobs);

/// <summary>What receiving an upload needs, injected as one parameter so the two upload endpoints stay readable.</summary>
internal sealed record UploadServices(BlobStore Blobs, AssetIngest Ingest, PipelinePlanner Planner, BatchStore Batches, IOptions<UploadOptions> Options);

internal static class AssetEndpoints
{
    public static RouteGroupBuilder MapAssets(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api").WithTags("Assets").ProducesCommonProblems().RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapPost("/uploads", Upload)
            .Accepts<IFormFileCollection>("multipart/form-data")
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status507InsufficientStorage)
            .DisableAntiforgery().DisableRequestTimeout();
        group.MapGet("/assets", List);
        group.MapGet("/assets/{id:guid}", Get);
        group.MapDelete("/assets/{id:guid}", Delete);
        return group;
    }

    /// <summary><c>POST /api/uploads</c>: multipart files (plus optional settings, category, tags); <c>?batch=true</c> groups them.</summary>
    private static Task<Results<Accepted<UploadResponse>, ProblemHttpResult>> Upload(
        HttpContext http, ClaimsPrincipal user, [AsParameters] UploadServices services, CancellationToken ct, bool batch = false) =>
        ReceiveAsync(http, user, services, batch, ct);

    /// <summary>Streams a multipart upload to disk, ingests the files and enqueues their pipelines.</summary>
    public static async Task<Results<Accepted<UploadResponse>, ProblemHttpResult>> ReceiveAsync(
        HttpContext http, ClaimsPrincipal user, UploadServices services, bool batch, CancellationToken ct)
    {
        var limits = services.Options.Value;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            bodyLimit.MaxRequestBodySize = limits.MaxRequestBytes;
        }

        if (http.Request.ContentLength > limits.MaxRequestBytes)
        {
            return Problems.Result(StatusCodes.Status413PayloadTooLarge, "upload.too_large", $"The upload is larger than the limit of {limits.MaxRequestBytes} bytes.");
        }

        if (http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = limits.MinBytesPerSecond > 0 ? new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(limits.MinBytesPerSecond, TimeSpan.FromSeconds(limits.MinRateGraceSeconds)) : null;
        }

        // The same threshold as the readiness check: refusing now beats failing half-way through a large file.
        if (services.Blobs.FreeBytes() < services.Blobs.MinFreeBytes)
        {
            return Problems.Result(StatusCodes.Status507InsufficientStorage, OutOfSpace.Code, $"The server's disk has less than Kiln:MinFreeDiskBytes ({services.Blobs.MinFreeBytes} bytes) free; try again later.");
        }

        UploadForm form;
        try
        {
            form = await UploadReader.ReadAsync(http.Request, services.Blobs, limits, ct);
        }
        catch (UploadRejectedException e)
        {
            return Problems.Result(e.Status, e.Code, e.Message);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return Problems.Result(StatusCodes.Status413PayloadTooLarge, "upload.too_large", $"The upload is larger than the limit of {limits.MaxRequestBytes} bytes.");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status408RequestTimeout)
        {
            return Problems.Result(StatusCodes.Status408RequestTimeout, "upload.too_slow", $"The upload arrived slower than {limits.MinBytesPerSecond} bytes per second (Kiln:Uploads:MinBytesPerSecond).");
        }
        catch (IOException e) when (OutOfSpace.Is(e))
        {
            return Problems.Result(StatusCodes.Status507InsufficientStorage, OutOfSpace.Code, "The server's disk filled up during the upload; try again later.");
        }
        catch (Exception e) when (e is InvalidDataException or IOException && !ct.IsCancellationRequested)
        {
            // MultipartReader throws IOException("Unexpected end of Stream") when the closing boundary never comes.
            return Problems.BadRequest("upload.malformed", "The multipart body is malformed: " + e.Message);
        }

        var error = services.Planner.Validate(form.Settings);
        if (error is null && form.Files.Select(f => (f.FileName, Message: services.Planner.CheckMediaKind(f.Sniffed.Kind.ToName(), form.Settings)))
                .FirstOrDefault(m => m.Message is not null) is { Message: { } mismatch } wrong)
        {
            error = new SettingsError("job_not_for_media", $"{wrong.FileName}: {mismatch}");
        }

        if (error is not null)
        {
            foreach (var file in form.Files)
            {
                File.Delete(file.TempPath);
            }

            return Problems.BadRequest(error.Code("upload"), error.Message);
        }

        var owner = user.KeyId();
        Guid? batchId = batch ? await services.Batches.CreateAsync(owner, form.Settings, ct) : null;
        var assets = await services.Ingest.IngestAsync(form, owner, batchId, ct);
        return TypedResults.Accepted(batchId is null ? null as string : $"/api/batches/{batchId}", new UploadResponse(assets, batchId));
    }

    /// <summary><c>GET /api/assets</c>: newest first, filtered by kind, category, tag, state (from the jobs) and a search of id or name.</summary>
    private static async Task<Results<Ok<List<Asset>>, ProblemHttpResult>> List(
        ClaimsPrincipal user, AssetStore assets, CancellationToken ct, int page = 1, int pageSize = 50,
        string? kind = null, string? category = null, string? tag = null, string? state = null, string? q = null)
    {
        if (Paging.Check(page, pageSize, "assets.bad_page") is { } badPage)
        {
            return badPage;
        }

        if (kind is not null && !AssetFilter.Kinds.Contains(kind))
        {
            return Problems.BadRequest("assets.bad_filter", $"kind must be one of {string.Join(", ", AssetFilter.Kinds)}.");
        }

        if (state is not null && !AssetFilter.States.Contains(state))
        {
            return Problems.BadRequest("assets.bad_filter", $"state must be one of {string.Join(", ", AssetFilter.States)}.");
        }

        if ((q?.Length ?? 0) > 200 || (category?.Length ?? 0) > 64 || (tag?.Length ?? 0) > 64)
        {
            return Problems.BadRequest("assets.bad_filter", "q is at most 200 characters, category and tag at most 64.");
        }

        var filter = new AssetFilter(kind, category, tag, state, string.IsNullOrWhiteSpace(q) ? null : q.Trim());
        return TypedResults.Ok(await assets.ListAsync(user.OwnerScope(), filter, pageSize, (int)Paging.Offset(page, pageSize), ct));
    }

    private static async Task<Results<Ok<AssetDetails>, ProblemHttpResult>> Get(
        Guid id, ClaimsPrincipal user, AssetStore assets, JobStore jobs, CancellationToken ct)
    {
        if (await assets.DetailsAsync(id, user.OwnerScope(), jobs, ct) is not { } details)
        {
            return Problems.NotFound("Asset");
        }

        return TypedResults.Ok(new AssetDetails(details.Asset, details.Derivatives, details.Jobs));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        Guid id, ClaimsPrincipal user, AssetStore assets, JobStore jobs, IJobStopper stopper, BlobStore blobs, ILogger<AssetStore> logger, CancellationToken ct)
    {
        if (await assets.GetAsync(id, user.OwnerScope(), ct) is null)
        {
            return Problems.NotFound("Asset");
        }

        var running = (await jobs.ListForAssetAsync(id, ct)).Where(j => j.State == JobState.Running).Select(j => j.Id).ToList();
        if (await assets.DeleteAsync(id, user.OwnerScope(), ct) is not { } paths)
        {
            return Problems.NotFound("Asset");
        }

        // Jobs went with the asset; whatever still runs for it must stop, or it would publish into a deleted asset.
        await stopper.StopAsync(running, JobStopReason.Cancelled, ct);
        foreach (var path in paths.Select(DerivativeRows.AttemptDirectory).Distinct(StringComparer.Ordinal))
        {
            blobs.DeleteQuietly(path, logger);
        }

        return TypedResults.NoContent();
    }
}
