using System.Globalization;
using System.Security.Claims;
using Kiln.Core;
using Kiln.Security;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;

namespace Kiln.Tus;

/// <summary>
/// <c>/api/tus</c>: the tus 1.0 protocol (core, creation, termination, expiration) for resumable uploads, used by the
/// dashboard's uploader (tus-js-client / Uppy). Admin and client keys may upload; uploads belong to the key.
/// </summary>
internal static class TusEndpoints
{
    public const string Prefix = "/api/tus";

    public static WebApplicationBuilder AddKilnTus(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<TusOptions>().BindConfiguration(TusOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<TusStore>();
        builder.Services.AddSingleton<TusService>();
        builder.Services.AddSingleton<TusSweeper>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TusSweeper>());
        builder.Services.AddCorsExposedHeaders(TusProtocol.ExposedHeaders);
        return builder;
    }

    /// <summary>
    /// tus lets clients behind proxies that only pass GET and POST send <c>X-HTTP-Method-Override: PATCH</c> (or
    /// DELETE) on a POST. Limited to the tus paths, and must run before routing picks the endpoint.
    /// </summary>
    public static WebApplication UseKilnTusMethodOverride(this WebApplication app)
    {
        app.UseWhen(c => c.Request.Path.StartsWithSegments(Prefix, StringComparison.OrdinalIgnoreCase), branch => branch.UseHttpMethodOverride());
        return app;
    }

    public static RouteGroupBuilder MapTus(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix).WithTags("Resumable uploads (tus)").ProducesCommonProblems()
            .RequireAuthorization(SecurityExtensions.ClientPolicy)
            .AddEndpointFilter(TusFilter);
        group.MapMethods("/", [HttpMethods.Options], Options).AllowAnonymous();
        group.MapPost("/", Create)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        group.MapMethods("/{id:guid}", [HttpMethods.Head], Head).ProducesProblem(StatusCodes.Status410Gone);
        group.MapPatch("/{id:guid}", Patch)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status410Gone)
            .ProducesProblem(StatusCodes.Status412PreconditionFailed)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status423Locked)
            .DisableRequestTimeout();
        group.MapDelete("/{id:guid}", Terminate);
        return group;
    }

    /// <summary>Every tus response says its version; every request but OPTIONS must speak it; refusals become problems.</summary>
    private static async ValueTask<object?> TusFilter(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        http.Response.Headers[TusProtocol.TusResumable] = TusProtocol.Version;
        if (!HttpMethods.IsOptions(http.Request.Method) && http.Request.Headers[TusProtocol.TusResumable] != TusProtocol.Version)
        {
            http.Response.Headers[TusProtocol.TusVersion] = TusProtocol.Version;
            return Problems.Result(StatusCodes.Status412PreconditionFailed, "tus.unsupported_version",
                $"{TusProtocol.TusResumable}: {TusProtocol.Version} is required; this server speaks tus {TusProtocol.Version} only.");
        }

        try
        {
            return await next(context);
        }
        catch (TusRejectedException e)
        {
            return Problems.Result(e.Status, e.Code, e.Message);
        }
    }

    private static NoContent Options(HttpResponse response, TusService tus)
    {
        response.Headers[TusProtocol.TusVersion] = TusProtocol.Version;
        response.Headers[TusProtocol.TusExtension] = TusProtocol.Extensions;
        response.Headers[TusProtocol.TusMaxSize] = tus.MaxSize.ToString(CultureInfo.InvariantCulture);
        return TypedResults.NoContent();
    }

    /// <summary>Creation: <c>Upload-Length</c> and <c>Upload-Metadata</c> (filename, category, tags, settings) → 201 with Location.</summary>
    private static async Task<Results<Created, ProblemHttpResult>> Create(HttpRequest request, ClaimsPrincipal user, TusService tus, CancellationToken ct)
    {
        if (request.Headers.ContainsKey(TusProtocol.UploadDeferLength))
        {
            return Problems.BadRequest("tus.defer_length_unsupported", "Upload-Defer-Length is not supported; send Upload-Length.");
        }

        var upload = await tus.CreateAsync(user.KeyId(), TusProtocol.ReadLength(request.Headers, TusProtocol.UploadLength), request.Headers[TusProtocol.UploadMetadata], ct);
        request.HttpContext.Response.Headers[TusProtocol.UploadExpires] = TusProtocol.HttpDate(upload.ExpiresAt);
        return TypedResults.Created($"{Prefix}/{upload.Id}");
    }

    /// <summary>Where the upload stands: Upload-Offset (bytes received), Upload-Length, and Kiln-Asset-Id once finished.</summary>
    private static async Task<Ok> Head(Guid id, HttpResponse response, ClaimsPrincipal user, TusService tus, CancellationToken ct)
    {
        var status = await tus.StatusAsync(id, user.KeyId(), ct);
        WriteStatus(response, status);
        response.Headers[TusProtocol.UploadLength] = status.Upload.Length.ToString(CultureInfo.InvariantCulture);
        response.Headers.CacheControl = "no-store";

        // The creation extension asks HEAD to return the metadata; Kiln keeps the keys it uses, so those come back.
        var upload = status.Upload;
        response.Headers[TusProtocol.UploadMetadata] = TusProtocol.FormatMetadata(
            ("filename", upload.FileName),
            ("category", upload.Category),
            ("tags", upload.Tags.Count > 0 ? string.Join(',', upload.Tags) : null),
            ("settings", upload.Settings?.ToJsonString()));
        return TypedResults.Ok();
    }

    /// <summary>Appends <c>application/offset+octet-stream</c> bytes at <c>Upload-Offset</c>; the last byte makes the asset.</summary>
    private static async Task<Results<NoContent, ProblemHttpResult>> Patch(Guid id, HttpContext http, ClaimsPrincipal user, TusService tus, CancellationToken ct)
    {
        if (!MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var type) || !type.MediaType.Equals(TusProtocol.ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return Problems.Result(StatusCodes.Status415UnsupportedMediaType, "tus.bad_content_type", $"PATCH bodies must be Content-Type: {TusProtocol.ContentType}.");
        }

        if (TusProtocol.ReadLength(http.Request.Headers, TusProtocol.UploadOffset) is not { } offset)
        {
            return Problems.BadRequest("tus.offset_required", "Upload-Offset is required.");
        }

        var status = await tus.AppendAsync(id, user.KeyId(), offset, http, ct);
        WriteStatus(http.Response, status);
        return TypedResults.NoContent();
    }

    /// <summary>Termination: the partial upload is deleted; the id answers 404 from then on.</summary>
    private static async Task<NoContent> Terminate(Guid id, ClaimsPrincipal user, TusService tus, CancellationToken ct)
    {
        await tus.TerminateAsync(id, user.KeyId(), ct);
        return TypedResults.NoContent();
    }

    private static void WriteStatus(HttpResponse response, TusStatus status)
    {
        response.Headers[TusProtocol.UploadOffset] = status.Offset.ToString(CultureInfo.InvariantCulture);
        if (status.Upload.AssetId is { } assetId)
        {
            response.Headers[TusProtocol.AssetId] = assetId.ToString();
        }
        else
        {
            response.Headers[TusProtocol.UploadExpires] = TusProtocol.HttpDate(status.Upload.ExpiresAt);
        }
    }
}
