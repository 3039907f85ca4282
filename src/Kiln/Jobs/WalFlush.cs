using Npgsql;

namespace Kiln.Jobs;

/// <summary>
/// Waits until everything this connection's server wrote so far, up to the call, is flushed to disk: the durability a
/// commit with <c>synchronous_commit = off</c> skipped. Virtual so tests can hold the flush back.
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

    public virtual async Task WaitAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(Sql, connection);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
