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

    public bool Paused { get; private init; }

    /// <summary>The queue has a concurrency cap or a rate limit (else leases need not lock its row).</summary>
    public bool Limited { get; private init; }

    public int Available { get; private init; } = int.MaxValue;

    public TimeSpan? RetryAfter { get; private init; }

    /// <summary>
    /// The injected clock read once the queue's lock was held: rate windows run on it (the clock of every other
    /// transition, see <see cref="JobStates"/>), read after the lock so a wait for the lock does not age it. Null for a
    /// queue without a row (nothing limits it).
    /// </summary>
    public DateTimeOffset? Now { get; private init; }

    public static async Task<QueueBudget> ReadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string queue, TimeProvider time, CancellationToken ct)
    {
        // Lock first, then read in a second statement: under READ COMMITTED that one gets a fresh snapshot, so it
        // counts the jobs the previous lease holder started. One statement would count with the snapshot from before
        // it waited for the lock.
        await using var batch = new NpgsqlBatch(conn, tx)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("select 1 from queues where name = @queue for update"),
                new NpgsqlBatchCommand("""
                    select q.paused, q.concurrency, q.rate_max, q.rate_period_ms, q.rate_window_start, q.rate_count,
                        case when q.concurrency > 0
                            then (select count(*) from jobs j where j.queue = q.name and j.state = 'running')::int
                            else 0 end
                    from queues q where q.name = @queue
                    """),
            },
        };
        batch.BatchCommands[0].Parameters.AddWithValue("queue", queue);
        batch.BatchCommands[1].Parameters.AddWithValue("queue", queue);
        await using var r = await batch.ExecuteReaderAsync(ct);
        await r.NextResultAsync(ct);
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
        var running = r.GetInt32(6);
        var now = time.GetUtcNow();

        var available = int.MaxValue;
        TimeSpan? retryAfter = null;
        if (concurrency > 0)
        {
            available = Math.Max(0, concurrency - running);
        }

        if (rateMax > 0)
        {
            if (now - windowStart >= period)
            {
                windowStart = now;
                windowCount = 0;
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
            Paused = paused,
            Limited = concurrency > 0 || rateMax > 0,
            Available = available,
            RetryAfter = retryAfter,
            Now = now,
        };
    }

    /// <summary>
    /// Counts the started jobs against the rate window (only queues with a rate limit pay for this write). A lease
    /// that started nothing leaves the window as it was, even one that has run out: a window opens at its first start,
    /// so an idle worker's poll cannot open it early and let the next window's starts follow the first ones sooner
    /// than a period later.
    /// </summary>
    public async Task ConsumeAsync(NpgsqlConnection conn, NpgsqlTransaction tx, int started, CancellationToken ct)
    {
        if (_rateMax == 0 || started == 0)
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
