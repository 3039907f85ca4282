using Npgsql;

namespace Kiln.Jobs;

/// <summary>
/// One interactive enqueue's round trip (<see cref="JobStore"/>): its connection, its batch and the reader of the
/// batch's results, and the leases that ride along for idle local loops. The jobs' transaction comes first and is read
/// by the call; the leases' transaction after it, read by the call or, for one job, after the call returned.
/// Disposing it gives back the loops' unused slots and the connection.
/// </summary>
internal sealed class EnqueueRoundTrip(NpgsqlConnection connection) : IAsyncDisposable
{
    private NpgsqlDataReader? _reader;

    public NpgsqlBatch Batch { get; } = new(connection);

    public List<IEnqueueLease> Leases { get; } = [];

    /// <summary>Sends the batch and reads the inserted jobs; <paramref name="settings"/>: a settings row comes first.</summary>
    public async Task<List<EnqueuedJob>> ReadJobsAsync(int count, bool settings, CancellationToken cancellationToken)
    {
        // The reader skips statements without rows (the queue insert) on its way.
        _reader = await Batch.ExecuteReaderAsync(cancellationToken);
        if (settings)
        {
            await _reader.NextResultAsync(cancellationToken);
        }

        return await JobInserts.ReadAsync(_reader, count, cancellationToken);
    }

    /// <summary>
    /// Reads the leases' results (past their settings row). Not cancellable: a job leased here and never read would
    /// wait for its lease to expire. Returns the queues whose lease took every ready job.
    /// </summary>
    public async Task<string[]> ReadLeasesAsync()
    {
        if (Leases.Count == 0)
        {
            return [];
        }

        await _reader!.NextResultAsync(CancellationToken.None);
        foreach (var lease in Leases)
        {
            await lease.ReadAsync(_reader, CancellationToken.None);
        }

        return [.. Leases.Where(l => l.Drained).Select(l => l.Queue)];
    }

    /// <summary>Reads the batch to its end (the NOTIFY): its last transaction has then committed.</summary>
    public async Task ReadToEndAsync()
    {
        while (await _reader!.NextResultAsync(CancellationToken.None))
        {
        }
    }

    /// <summary>Hands the leased jobs to their loops' slots.</summary>
    public async Task StartLeasesAsync()
    {
        foreach (var lease in Leases)
        {
            await lease.StartAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var lease in Leases)
        {
            lease.Dispose();
        }

        if (_reader is not null)
        {
            await _reader.DisposeAsync();
        }

        await Batch.DisposeAsync();
        await connection.DisposeAsync();
    }
}
