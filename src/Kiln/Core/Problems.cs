using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Kiln.Core;

/// <summary>
/// Problem details with a stable <c>errorCode</c> extension: clients branch on the code, people read the detail.
/// The code is also in <c>type</c> as <c>urn:kiln:error:{code}</c>.
/// </summary>
internal static class Problems
{
    /// <summary>Problems the framework makes (bad JSON, unknown route, empty error statuses) get a stable code too.</summary>
    public static IServiceCollection AddKilnProblemDetails(this IServiceCollection services) =>
        services.AddProblemDetails(o => o.CustomizeProblemDetails = c =>
        {
            if (c.ProblemDetails.Extensions.ContainsKey("errorCode"))
            {
                return;
            }

            var status = c.ProblemDetails.Status ?? c.HttpContext.Response.StatusCode;
            var code = CodeFor(status);
            c.ProblemDetails.Extensions["errorCode"] = code;
            if (status == StatusCodes.Status413PayloadTooLarge && c.ProblemDetails.Detail is null
                && c.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } limit)
            {
                c.ProblemDetails.Detail = $"The request body is larger than the limit of {limit} bytes (Kiln:Security:MaxRequestBodyBytes for JSON requests).";
            }

            if (status == StatusCodes.Status415UnsupportedMediaType && c.ProblemDetails.Detail is null)
            {
                c.ProblemDetails.Detail = "This endpoint does not accept the request's Content-Type; the OpenAPI document at /openapi/v1.json lists what it accepts.";
            }

            c.ProblemDetails.Type = "urn:kiln:error:" + code;
        });

    /// <summary>Declares, for the OpenAPI document, the problems every API endpoint may answer.</summary>
    public static TBuilder ProducesCommonProblems<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        foreach (var status in new[] { 400, 401, 404, 429 })
        {
            builder.ProducesProblem(status);
        }

        return builder;
    }

    public static string CodeFor(int status) => status switch
    {
        400 => "bad_request",
        401 => "auth.required",
        403 => "auth.forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        409 => "conflict",
        411 => "length_required",
        412 => "precondition_failed",
        413 => "too_large",
        415 => "unsupported_media_type",
        416 => "range_not_satisfiable",
        429 => "rate_limited",
        500 => "internal_error",
        503 => "unavailable",
        507 => "storage.full",
        _ => "error",
    };

    public static ProblemHttpResult Result(int status, string code, string detail, IDictionary<string, object?>? extra = null)
    {
        var extensions = new Dictionary<string, object?>(StringComparer.Ordinal) { ["errorCode"] = code };
        if (extra is not null)
        {
            foreach (var (k, v) in extra)
            {
                extensions[k] = v;
            }
        }

        return TypedResults.Problem(detail, statusCode: status, title: TitleFor(status), type: "urn:kiln:error:" + code, extensions: extensions);
    }

    public static ProblemHttpResult NotFound(string what) => Result(StatusCodes.Status404NotFound, "not_found", $"{what} not found.");

    public static ProblemHttpResult BadRequest(string code, string detail) => Result(StatusCodes.Status400BadRequest, code, detail);

    public static ProblemHttpResult Conflict(string code, string detail) => Result(StatusCodes.Status409Conflict, code, detail);

    /// <summary>Writes a problem straight to the response, for middleware and authentication handlers.</summary>
    public static Task Write(HttpContext context, int status, string code, string detail)
    {
        context.Response.StatusCode = status;
        var problem = new ProblemDetails
        {
            Status = status,
            Title = TitleFor(status),
            Type = "urn:kiln:error:" + code,
            Detail = detail,
            Instance = context.Request.Path,
        };
        problem.Extensions["errorCode"] = code;
        return context.Response.WriteAsJsonAsync(problem, (System.Text.Json.JsonSerializerOptions?)null, "application/problem+json", context.RequestAborted);
    }

    private static string TitleFor(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        413 => "Payload too large",
        415 => "Unsupported media type",
        416 => "Range not satisfiable",
        429 => "Too many requests",
        408 => "Request timeout",
        503 => "Service unavailable",
        507 => "Insufficient storage",
        _ => "Error",
    };
}
