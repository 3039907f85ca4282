using System.Globalization;

namespace Kiln.Media.Vips;

/// <summary>
/// Collapses repeated log lines: within each window a message is passed on the first time it is seen and then only
/// counted, and when the window ends one "… (repeated N more times)" line per counted message is passed on. At most
/// <c>maxDistinct</c> different messages pass per window; the rest are counted together. libvips can warn once per
/// scanline (one 47 KB TIFF produced 707 identical lines), which would otherwise bury the log.
/// </summary>
public sealed class RepeatedLogFilter : IDisposable
{
    private readonly Action<VipsLogLevel, string> _emit;
    private readonly TimeProvider _time;
    private readonly TimeSpan _window;
    private readonly int _maxDistinct;
    private readonly Lock _gate = new();
    private readonly Dictionary<(VipsLogLevel Level, string Message), long> _repeats = [];
    private long _othersSuppressed;
    private DateTimeOffset _windowStart;
    private ITimer? _flush;

    public RepeatedLogFilter(Action<VipsLogLevel, string> emit, TimeProvider time, TimeSpan window, int maxDistinct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDistinct, 1);
        _emit = emit;
        _time = time;
        _window = window;
        _maxDistinct = maxDistinct;
        _windowStart = time.GetUtcNow();
    }

    /// <summary>Passes the message on, or counts it when it was already passed on in this window.</summary>
    public void Log(VipsLogLevel level, string message)
    {
        List<(VipsLogLevel, string)>? summary = null;
        bool pass;
        lock (_gate)
        {
            if (_time.GetUtcNow() - _windowStart >= _window)
            {
                summary = TakeSummaryLocked();
            }

            var key = (level, message);
            if (_repeats.TryGetValue(key, out var count))
            {
                _repeats[key] = count + 1;
                pass = false;
            }
            else if (_repeats.Count < _maxDistinct)
            {
                _repeats[key] = 0;
                pass = true;
            }
            else
            {
                _othersSuppressed++;
                pass = false;
            }

            if (!pass)
            {
                // Summaries must come out even when no further message arrives to notice the window's end.
                _flush ??= _time.CreateTimer(_ => Flush(), null, _windowStart + _window - _time.GetUtcNow(), Timeout.InfiniteTimeSpan);
            }
        }

        Emit(summary);
        if (pass)
        {
            _emit(level, message);
        }
    }

    /// <summary>Passes on the counts of the current window now and starts a new one.</summary>
    public void Flush()
    {
        List<(VipsLogLevel, string)> summary;
        lock (_gate)
        {
            summary = TakeSummaryLocked();
        }

        Emit(summary);
    }

    public void Dispose()
    {
        Flush();
        lock (_gate)
        {
            _flush?.Dispose();
            _flush = null;
        }
    }

    private List<(VipsLogLevel, string)> TakeSummaryLocked()
    {
        var lines = _repeats.Where(r => r.Value > 0)
            .Select(r => (r.Key.Level, string.Create(CultureInfo.InvariantCulture, $"{r.Key.Message} (repeated {r.Value} more times in {_window.TotalSeconds:0.#} s)")))
            .ToList();
        if (_othersSuppressed > 0)
        {
            lines.Add((VipsLogLevel.Warning, string.Create(CultureInfo.InvariantCulture, $"{_othersSuppressed} more messages of other kinds suppressed in {_window.TotalSeconds:0.#} s")));
        }

        _repeats.Clear();
        _othersSuppressed = 0;
        _windowStart = _time.GetUtcNow();
        _flush?.Dispose();
        _flush = null;
        return lines;
    }

    private void Emit(List<(VipsLogLevel Level, string Message)>? lines)
    {
        foreach (var (level, message) in lines ?? [])
        {
            _emit(level, message);
        }
    }
}
