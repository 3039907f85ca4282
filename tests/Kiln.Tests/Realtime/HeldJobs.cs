using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Realtime;

/// <summary>
/// Jobs enqueued to run only when a test says so: a client can join first however slow the machine is, then
/// the job is made ready and every node serving its queue is woken, as an enqueue would.
/// </summary>
internal static class HeldJobs
{
    public static DateTimeOffset Hold => DateTimeOffset.UtcNow.AddDays(1);

    public static async Task ReleaseAsync(KilnServer server, Guid jobId)
    {
        await using var cmd = server.Get<NpgsqlDataSource>().CreateCommand("""
            with ready as (update jobs set run_at = now() where id = @id returning queue)
            select pg_notify('kiln_jobs', queue) from ready
            """);
        cmd.Parameters.AddWithValue("id", jobId);
        await cmd.ExecuteNonQueryAsync();
    }
}
