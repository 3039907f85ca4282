using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace Kiln.Bench;

/// <summary>
/// Waits for jobs the way a client of the server would: it follows every job on the <c>/hubs/jobs</c> hub
/// (<c>join-all</c>, an admin key) and learns of each end from the <c>job-completed</c> / <c>job-error</c> events,
/// instead of reading each job from the database every 20 ms. The Node reference's client reads an in-memory map, so
/// polling charged Kiln a cost the reference does not pay (docs/benchmarks.md, "Waiting on the hub").
/// </summary>
internal sealed class JobWaiter : IAsyncDisposable
{
    private readonly HubConnection _hub;
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _jobs = new();

    private JobWaiter(HubConnection hub) => _hub = hub;

    public static async Task<JobWaiter> ConnectAsync(Uri server, string key, CancellationToken ct)
    {
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(server, "/hubs/jobs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(key))
            .Build();
        var waiter = new JobWaiter(hub);
        hub.On<JsonElement>("job-completed", e => waiter.Entry(e).TrySetResult());
        hub.On<JsonElement>("job-error", e => waiter.Entry(e).TrySetException(
            new InvalidOperationException($"job {e.GetProperty("jobId")} {e.GetProperty("errorCode")}: {e.GetProperty("message")}")));
        await hub.StartAsync(ct);
        // Joined before any upload: an event cannot come before its job is followed.
        await hub.InvokeAsync<bool>("join-all", ct);
        return waiter;
    }

    /// <summary>Completes when every job completed; throws when one failed or was cancelled.</summary>
    public Task WaitAsync(IEnumerable<Guid> jobs, CancellationToken ct) =>
        Task.WhenAll(jobs.Select(id => _jobs.GetOrAdd(id, _ => NewEntry()).Task.WaitAsync(ct)));

    /// <summary>Forgets finished jobs, so a long run does not keep every job it saw.</summary>
    public void Forget(IEnumerable<Guid> jobs)
    {
        foreach (var id in jobs)
        {
            _jobs.TryRemove(id, out _);
        }
    }

    public ValueTask DisposeAsync() => _hub.DisposeAsync();

    private TaskCompletionSource Entry(JsonElement payload) => _jobs.GetOrAdd(payload.GetProperty("jobId").GetGuid(), _ => NewEntry());

    private static TaskCompletionSource NewEntry() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
