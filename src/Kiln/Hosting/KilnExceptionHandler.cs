using Kiln.Core;
using System.Globalization;
using Kiln.Media;
using Microsoft.AspNetCore.Diagnostics;
using Npgsql;

namespace Kiln.Hosting;

/// <summary>
/// Turns the failures that are not bugs into honest answers instead of a 500: the database unreachable is 503 with
/// <c>Retry-After</c> (<c>database.unavailable</c>), a full disk is 507 (<c>storage.full</c>), and a request Kestrel
/// found bad (too slow, malformed) keeps Kestrel's status. Everything else stays a logged 500.
/// </summary>
internal sealed class KilnExceptionHandler(ILogger<KilnExceptionHandler> logger) : IExceptionHandler
{
    /// <summary>Seconds a client is told to wait while the database is away: long enough for a restart or a failover.</summary>
    public const int RetryAfterSeconds = 5;

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (Classify(exception) is not { } answer || httpContext.Response.HasStarted)
        {
            return false;
        }

        if (answer.Status == StatusCodes.Status503ServiceUnavailable)
        {
            logger.LogWarning("{Method} {Path}: database unavailable ({Error}); answered 503", httpContext.Request.Method, httpContext.Request.Path, exception.Message);
            httpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
        }
        else if (answer.Status == StatusCodes.Status507InsufficientStorage)
        {
            logger.LogError("{Method} {Path}: the data directory's disk is full; answered 507", httpContext.Request.Method, httpContext.Request.Path);
        }

        await Problems.Write(httpContext, answer.Status, answer.Code, answer.Detail);
        return true;
    }

    /// <summary>The answer for an exception this handler owns, or null for a real 500.</summary>
    public static (int Status, string Code, string Detail)? Classify(Exception exception)
    {
        if (OutOfSpace.Is(exception))
        {
            return (StatusCodes.Status507InsufficientStorage, OutOfSpace.Code, "The server's disk is full; try again later.");
        }

        if (exception is BadHttpRequestException bad)
        {
            return (bad.StatusCode, Problems.CodeFor(bad.StatusCode), bad.Message);
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (IsDatabaseUnavailable(e))
            {
                return (StatusCodes.Status503ServiceUnavailable, "database.unavailable", "The database is unavailable; retry after the Retry-After delay.");
            }
        }

        return null;
    }

    /// <summary>
    /// Connection-level failures only. A <see cref="PostgresException"/> is the server answering (a constraint, a bad
    /// query: a real bug), except the classes that mean "not now": 08 connection exception, 57P admin shutdown /
    /// cannot connect now, 53300 too many connections.
    /// </summary>
    private static bool IsDatabaseUnavailable(Exception e) => e switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal)
            || pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState == "53300",
        NpgsqlException => true,
        _ => false,
    };
}
