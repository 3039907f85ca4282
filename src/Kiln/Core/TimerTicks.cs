namespace Kiln.Core;

internal static class TimerTicks
{
    /// <summary>Waits for the timer's next tick; false once the token is cancelled, so loops end without an exception.</summary>
    public static async Task<bool> NextAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
