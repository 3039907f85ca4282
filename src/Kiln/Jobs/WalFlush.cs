using Npgsql;

namespace Kiln.Jobs;

/// <summary>
/// Makes an enqueue durable in the same round trip as its asynchronous commit: a statement appended to the batch,
/// after the error barrier that ends the jobs' own implicit transaction, whose synchronous commit waits until
/// everything written so far is flushed to disk — the durability the jobs' <c>synchronous_commit = off</c> commit
/// skipped. PostgreSQL sends the jobs' results at that barrier's Sync, before the flush, so the jobs can be handed to
/// their loop while the flush is under way. Virtual so tests can hold the flush back.
/// </summary>
internal class WalFlush
{
    /// <summary>
    /// A transactional logical message assigns the transaction an id and writes a WAL record, so its commit, under the
    /// default <c>synchronous_commit = on</c>, waits for <c>XLogFlush</c> up to the end of its own commit record
    /// (PostgreSQL's xact.c, <c>RecordTransactionCommit</c>). WAL is flushed in order, so that covers every commit
    /// written before it, the asynchronous one included. A cheaper-looking <c>select pg_current_xact_id()</c> does
    /// not: it assigns an id but writes no WAL, and a commit that wrote no WAL before its commit record is
    /// asynchronous whatever the setting (<c>wrote_xlog</c> in the same function). The message is a no-op at replay
    /// and costs one small WAL record; nothing decodes it unless a logical replication slot asks for prefix "kiln".
    /// </summary>
    private const string Sql = "select pg_logical_emit_message(true, 'kiln', '')";

    /// <summary>
    /// Appends the flush to <paramref name="batch"/>, after an error barrier (<see cref="NpgsqlBatchCommand.AppendErrorBarrier"/>,
    /// a Sync) on its last statement: the Sync commits what came before on its own and sends its results at once.
    /// </summary>
    public virtual void AddTo(NpgsqlBatch batch)
    {
        batch.BatchCommands[^1].AppendErrorBarrier = true;
        batch.BatchCommands.Add(new NpgsqlBatchCommand(Sql));
    }

    /// <summary>Reads the batch to its end; the flush statement's result comes once the flush is done.</summary>
    public virtual async Task WaitAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        while (await reader.NextResultAsync(cancellationToken))
        {
        }
    }
}
