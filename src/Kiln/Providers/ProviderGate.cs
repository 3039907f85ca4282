using System.Collections.Concurrent;

namespace Kiln.Providers;

/// <summary>
/// A provider's 429 holds back every request to it, not only the one that got it: when a provider says "retry after
/// N s", the other jobs of the queue that use it wait out the same N seconds before sending, instead of each
/// spending its own attempts on answers that are bound to be 429 too. The queue thereby slows to the rate the
/// provider grants. One gate per provider name, per process (each remote worker keeps its own).
/// </summary>
internal sealed class ProviderGate(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _closedUntil = new(StringComparer.Ordinal);

    /// <summary>How long requests to <paramref name="provider"/> are still held back; zero when they may go.</summary>
    public TimeSpan Remaining(string provider) =>
        _closedUntil.TryGetValue(provider, out var until) && until - time.GetUtcNow() is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero;

    /// <summary>Holds back requests to <paramref name="provider"/> for <paramref name="wait"/> (a later hold wins).</summary>
    public void Close(string provider, TimeSpan wait)
    {
        var until = time.GetUtcNow() + wait;
        _closedUntil.AddOrUpdate(provider, until, (_, old) => old > until ? old : until);
    }

    /// <summary>Returns once requests to <paramref name="provider"/> may go (at once when the gate is open).</summary>
    public async Task WaitAsync(string provider, CancellationToken ct)
    {
        // A loop: another 429 may extend the hold while this request waits.
        while (Remaining(provider) is var left && left > TimeSpan.Zero)
        {
            await Task.Delay(left, time, ct);
        }
    }
}
