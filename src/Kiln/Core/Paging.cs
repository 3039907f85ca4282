using Microsoft.AspNetCore.Http.HttpResults;

namespace Kiln.Core;

/// <summary>The one check of <c>page</c>/<c>pageSize</c> query values, shared by every paged endpoint.</summary>
internal static class Paging
{
    public const int MaxPageSize = 500;

    /// <summary>
    /// Null when the values are usable. A page whose first row lies past <see cref="int.MaxValue"/> is refused:
    /// <c>(page - 1) * pageSize</c> would overflow into a negative OFFSET, which PostgreSQL rejects with a 500.
    /// </summary>
    public static ProblemHttpResult? Check(int page, int pageSize, string code)
    {
        if (page < 1 || pageSize is < 1 or > MaxPageSize || Offset(page, pageSize) > int.MaxValue)
        {
            return Problems.BadRequest(code, $"page must be at least 1, pageSize between 1 and {MaxPageSize}, and (page - 1) * pageSize at most {int.MaxValue}.");
        }

        return null;
    }

    public static long Offset(int page, int pageSize) => (page - 1L) * pageSize;
}
