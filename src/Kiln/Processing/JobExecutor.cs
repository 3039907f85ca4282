using Kiln.Jobs;
using Kiln.Media;

namespace Kiln.Processing;

/// <summary>How one execution of a handler ended.</summary>
internal abstract record ExecutionResult
{
    public sealed record Succeeded(JobOutcome Outcome) : ExecutionResult;

    public sealed record Failed(string ErrorCode, string Message, bool Retryable) : ExecutionResult;

    /// <summary>Stopped from outside (cancel, pause, lost lease, stall, shutdown); the queue already knows.</summary>
    public sealed record Stopped(JobStopReason? Reason) : ExecutionResult;
}

/// <summary>
/// Runs a handler for a lease and turns whatever happens into an <see cref="ExecutionResult"/>. Shared by the
/// in-process workers and the remote worker so both treat errors, cancellation and outputs the same way.
/// </summary>
internal static class JobExecutor
{
    /// <summary>Runs an attempt (fetching its input and running its handler).</summary>
    public static async Task<ExecutionResult> RunAsync(
        Func<CancellationToken, Task<JobOutcome>> attempt,
        Func<JobStopReason?> stopReason,
        CancellationToken cancellationToken)
    {
        try
        {
            var outcome = await attempt(cancellationToken);
            if (stopReason() is { } reason)
            {
                return new ExecutionResult.Stopped(reason);
            }

            return new ExecutionResult.Succeeded(outcome);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new ExecutionResult.Stopped(stopReason());
        }
        catch (Exception e) when (OutOfSpace.Is(e))
        {
            return new ExecutionResult.Failed(OutOfSpace.Code, OutOfSpace.Error().Message, Retryable: true);
        }
        catch (JobFailedException e)
        {
            return new ExecutionResult.Failed(e.ErrorCode, e.Message, e.Retryable);
        }
        catch (MediaException e)
        {
            return new ExecutionResult.Failed(e.Code, e.Message, e.Retryable);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new ExecutionResult.Failed("io_error", e.Message, Retryable: true);
        }
        catch (Exception e)
        {
            return new ExecutionResult.Failed("internal_error", $"{e.GetType().Name}: {e.Message}", Retryable: true);
        }
    }
}
