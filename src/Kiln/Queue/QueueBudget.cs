using Npgsql;

namespace Kiln.Queue;

/// <summary>
/// How many jobs a queue may start right now, read under a row lock on the queue so that the global concurrency
/// cap and the rate limit hold across all workers and nodes: leases of one queue serialise on that row.
/// </summary>
internal sealed class QueueBudget
{
    private string _queue = "";
    private int _rateMax;
    private DateTimeOffset _windowStart;
    private int _windowCount;
    private bool _windowReset;

    public bool Paused { get; private init; }

    public int Available { get; private init; } = int.MaxValue;

    public TimeSpan? RetryAfter { get; private init; }

    public static async Task<QueueBudget> ReadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            select q.paused, q.concurrency, q.rate_max, q.rate_period_ms, q.rate_window_start, q.rate_count, now(),
                case when q.concurrency > 0
                    then (select count(*) from jobs j where j.queue = q.name and j.state = 'running')::int
                    else 0 end
            from queues q where q.name = @queue
            for update of q
            """, conn, tx);
        cmd.Parameters.AddWithValue("queue", queue);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return new QueueBudget { _queue = queue };
        }

        var paused = r.GetBoolean(0);
        var concurrency = r.GetInt32(1);
        var rateMax = r.GetInt32(2);
        var period = TimeSpan.FromMilliseconds(r.GetInt32(3));
        var windowStart = r.GetFieldValue<DateTimeOffset>(4);
        var windowCount = r.GetInt32(5);
        var now = r.GetFieldValue<DateTimeOffset>(6);
        var running = r.GetInt32(7);

        var available = int.MaxValue;
        TimeSpan? retryAfter = null;
        if (concurrency > 0)
        {
            available = Math.Max(0, concurrency - running);
        }

        var reset = false;
        if (rateMax > 0)
        {
            if (now - windowStart >= period)
            {
                windowStart = now;
                windowCount = 0;
                reset = true;
            }

            var left = Math.Max(0, rateMax - windowCount);
            if (left < available)
            {
                available = left;
                if (left == 0)
                {
                    retryAfter = windowStart + period - now;
                }
            }
        }

        return new QueueBudget
        {
            _queue = queue,
            _rateMax = rateMax,
            _windowStart = windowStart,
            _windowCount = windowCount,
            _windowReset = reset,
            Paused = paused,
            Available = available,
            RetryAfter = retryAfter,
        };
    }

    /// <summary>Counts the started jobs against the rate window (only queues with a rate limit pay for this write).</summary>
    public async Task ConsumeAsync(NpgsqlConnection conn, NpgsqlTransaction tx, int started, CancellationToken ct)
    {
        if (_rateMax == 0 || (started == 0 && !_windowReset))
        {
            return;
        }

        await using var cmd = new NpgsqlCommand(
            "update queues set rate_window_start = @start, rate_count = @count where name = @queue", conn, tx);
        cmd.Parameters.AddWithValue("start", _windowStart);
        cmd.Parameters.AddWithValue("count", _windowCount + started);
        cmd.Parameters.AddWithValue("queue", _queue);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
