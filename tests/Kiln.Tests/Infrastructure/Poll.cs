using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Kiln.Tests.Infrastructure;

/// <summary>
/// Waits for a condition that has no event to await by asking again every few milliseconds; the one place tests wait
/// for something to happen (never a fixed sleep). The timeout only turns a hang into a failure that names what was
/// awaited and the last value seen: it is not a performance bound, so it is generous (a fresh CI run at load 27 took
/// many times longer than a quiet laptop). <c>KILN_TEST_POLL_SECONDS</c> overrides the default.
/// </summary>
internal static class Poll
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(25);

    /// <summary>The default timeout in seconds: <c>KILN_TEST_POLL_SECONDS</c>, else 60.</summary>
    public static double DefaultTimeoutSeconds { get; } =
        double.TryParse(Environment.GetEnvironmentVariable("KILN_TEST_POLL_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 60;

    /// <summary><see cref="DefaultTimeoutSeconds"/> as a span, for waits on an event (<c>task.WaitAsync(Poll.DefaultTimeout)</c>).</summary>
    public static TimeSpan DefaultTimeout => TimeSpan.FromSeconds(DefaultTimeoutSeconds);

    /// <summary>Waits until the condition holds.</summary>
    public static Task UntilAsync(Func<bool> condition, string what, double? timeoutSeconds = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeoutSeconds);

    /// <summary>Waits until the condition holds.</summary>
    public static Task UntilAsync(Func<Task<bool>> condition, string what, double? timeoutSeconds = null) =>
        UntilAsync(condition, held => held, what, timeoutSeconds);

    /// <summary>Reads a value until it satisfies <paramref name="done"/> and returns it; a timeout names the last value read.</summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, double? timeoutSeconds = null)
    {
        var timeout = TimeSpan.FromSeconds(timeoutSeconds ?? DefaultTimeoutSeconds);
        var started = Stopwatch.GetTimestamp();
        // A cancelled test run stops the wait at once instead of letting it run to the timeout.
        var ct = TestContext.Current.CancellationToken;
        while (true)
        {
            var last = await read();
            if (done(last))
            {
                return last;
            }

            if (Stopwatch.GetElapsedTime(started) > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {what}{Describe(last)}");
            }

            await Task.Delay(Interval, ct);
        }
    }

    private static string Describe<T>(T last) => last switch
    {
        bool => ".",
        JsonNode node => "; last seen: " + node.ToJsonString(),
        null => "; last seen: null",
        _ => "; last seen: " + last,
    };
}
