using System.Collections.Concurrent;
using System.Diagnostics;
using Kiln.Queue;
using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>
/// A group-committed completion is one statement: the update (by tuple id, or by primary key for a row moved since its
/// lease), the children's release, their NOTIFY and the commit, in one round trip. Counted from Npgsql's own traces
/// of the statements run against this test's database.
/// </summary>
public sealed class CompletionRoundTripTests : HandLeasedQueueTests
{
    [Fact]
    public async Task Completing_a_job_and_releasing_its_child_is_one_statement()
    {
        var parent = await Server.EnqueueAsync();
        var child = await Server.EnqueueAsync(parentId: parent);
        var lease = Assert.Single((await Server.LeaseAsync(5)).Jobs);

        var statements = await CompletionStatementsAsync(() => CompleteAsync(lease));

        Assert.Single(statements);
        Assert.Equal("completed", (await Server.JobAsync(parent)).State);
        Assert.Equal("queued", (await Server.JobAsync(child)).State);
    }

    [Fact]
    public async Task A_job_whose_row_moved_since_its_lease_completes_in_the_same_one_statement()
    {
        var moved = await Server.EnqueueAsync();
        var lease = Assert.Single((await Server.LeaseAsync(5)).Jobs);
        // A progress write gives the row a new tuple id, so the tuple id it was leased at finds nothing.
        await Server.Get<IJobDispatcher>().ReportProgressAsync(new ProgressReport(lease.JobId, lease.LeaseId, 50), CancellationToken.None);
        await Poll.UntilAsync(() => Server.JobAsync(moved), job => job.Progress >= 50, "the progress write");

        var statements = await CompletionStatementsAsync(() => CompleteAsync(lease));

        Assert.Single(statements);
        var job = await Server.JobAsync(moved);
        Assert.Equal("completed", job.State);
        Assert.Equal(100, job.Progress);
    }

    private async Task CompleteAsync(JobLease lease) =>
        Assert.True(await Server.Get<IJobDispatcher>().CompleteAsync(new CompletionReport(lease.JobId, lease.LeaseId), CancellationToken.None));

    /// <summary>The statements that complete jobs or release children run on this test's database while <paramref name="act"/> runs.</summary>
    private async Task<List<string>> CompletionStatementsAsync(Func<Task> act)
    {
        var database = new NpgsqlConnectionStringBuilder(Server.Get<NpgsqlDataSource>().ConnectionString).Database;
        var statements = new ConcurrentQueue<string>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                if (Equals(activity.GetTagItem("db.namespace"), database) && activity.GetTagItem("db.query.text") is string text
                    && (text.Contains("progress = 100", StringComparison.Ordinal) || text.Contains("state = 'waiting'", StringComparison.Ordinal)))
                {
                    statements.Enqueue(text);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        await act();
        return [.. statements];
    }
}
