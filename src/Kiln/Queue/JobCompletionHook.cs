using Kiln.Jobs;
using Npgsql;

namespace Kiln.Queue;

/// <summary>A completed job with outputs, as a hook sees it: its published directory is already in place.</summary>
internal sealed record CompletedJob(Guid JobId, string Kind, Guid AssetId, Guid? OwnerId, string PublishedDirectory);

/// <summary>
/// Lets a feature write its own rows in the transaction that completes a job of its kind (transcripts, say), so the
/// rows and the job's state commit together and a remote worker needs no database. Events it returns are published
/// after the commit.
/// </summary>
internal interface IJobCompletionHook
{
    string Kind { get; }

    Task<IReadOnlyList<JobEvent>> OnCompletedAsync(CompletedJob job, NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct);
}
