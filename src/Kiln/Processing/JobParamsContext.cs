using Kiln.Jobs;

namespace Kiln.Processing;

/// <summary>The run-time side: a handler reads its params with the same reader the planner checked them with.</summary>
internal static class JobParamsContext
{
    /// <summary>
    /// A job queued before its kind checked params (or sent straight to the queue) can still hold a bad value: it fails
    /// at once with <c>params.invalid</c>, not retried, naming the param.
    /// </summary>
    public static T ReadParams<T>(this JobContext context, Func<JobParams, T> reader)
    {
        try
        {
            return JobParams.Read(context.Params, reader);
        }
        catch (JobParamsException e)
        {
            throw new JobFailedException("params.invalid", e.Message);
        }
    }
}
