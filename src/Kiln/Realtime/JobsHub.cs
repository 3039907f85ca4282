using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Security;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace Kiln.Realtime;

/// <summary>A job's state as <c>join-job</c> and <c>get-status</c> return it.</summary>
internal sealed record JobStatus(
    Guid JobId,
    string Kind,
    string Status,
    string? Stage,
    double Progress,
    double? Speed,
    double? Eta,
    long? TotalBytes,
    long? Position,
    int Attempts,
    JsonNode? Result,
    string? ErrorCode,
    string? Message);

/// <summary>
/// <c>/hubs/jobs</c>: clients join the jobs they want to follow (group <c>job:{id}</c>) and receive its events.
/// A client key may join only its own jobs (another owner's job answers as if it did not exist); an admin may
/// also join every job at once. Events come from <see cref="HubEventDispatcher"/>.
/// </summary>
[Authorize(Policy = SecurityExtensions.ClientPolicy)]
internal sealed class JobsHub(
    JobReader jobs, WatchRegistry watches, HubEventDispatcher dispatcher, HubKeyWatcher keyWatcher, IOptions<RealtimeOptions> options) : Hub
{
    public const string Path = "/hubs/jobs";

    private const string JoinedKey = "kiln.jobs";
    private const string AllKey = "kiln.all";
    private const string NewKey = "kiln.new";

    /// <summary>Follows a job: adds the caller to its group and returns its current state.</summary>
    [HubMethodName("join-job")]
    public async Task<JobStatus> JoinJob(Guid jobId)
    {
        var joined = Joined();
        if (!joined.Contains(jobId) && joined.Count >= options.Value.MaxJobsPerConnection)
        {
            throw new HubException($"too_many_jobs: a connection may follow at most {options.Value.MaxJobsPerConnection} jobs.");
        }

        var ct = Context.ConnectionAborted;
        if (await jobs.GetAsync(jobId, Context.User!.OwnerScope(), ct) is null)
        {
            throw new HubException("not_found: Job not found.");
        }

        // Watch first, read second: an event published between the two reaches the caller, none is lost.
        if (joined.Add(jobId))
        {
            watches.Add(jobId);
            await Groups.AddToGroupAsync(Context.ConnectionId, HubEventDispatcher.JobGroup(jobId), ct);
        }

        var status = await StatusAsync(jobId, ct) ?? throw new HubException("not_found: Job not found.");
        if (status.Status == JobState.Queued)
        {
            await Clients.Caller.SendAsync(JobEventType.Queued, new JsonObject { ["jobId"] = jobId, ["position"] = status.Position }, ct);
        }

        if (!JobState.IsTerminal(status.Status))
        {
            dispatcher.ScheduleReconcile(jobId);
        }

        return status;
    }

    /// <summary>Stops following a job; true when the caller was following it.</summary>
    [HubMethodName("leave-job")]
    public async Task<bool> LeaveJob(Guid jobId)
    {
        if (!Joined().Remove(jobId))
        {
            return false;
        }

        watches.Remove(jobId);
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, HubEventDispatcher.JobGroup(jobId), Context.ConnectionAborted);
        return true;
    }

    /// <summary>A job's current state, without following it.</summary>
    [HubMethodName("get-status")]
    public async Task<JobStatus> GetStatus(Guid jobId)
    {
        var ct = Context.ConnectionAborted;
        if (await jobs.GetAsync(jobId, Context.User!.OwnerScope(), ct) is null)
        {
            throw new HubException("not_found: Job not found.");
        }

        return await StatusAsync(jobId, ct) ?? throw new HubException("not_found: Job not found.");
    }

    /// <summary>Admins only: follows every job (group <c>jobs:all</c>), e.g. for a dashboard.</summary>
    [HubMethodName("join-all")]
    [Authorize(Policy = SecurityExtensions.AdminPolicy)]
    public async Task<bool> JoinAll()
    {
        if (Context.Items.ContainsKey(AllKey))
        {
            return false;
        }

        Context.Items[AllKey] = true;
        watches.AddAll();
        await Groups.AddToGroupAsync(Context.ConnectionId, HubEventDispatcher.AllGroup, Context.ConnectionAborted);
        return true;
    }

    [HubMethodName("leave-all")]
    [Authorize(Policy = SecurityExtensions.AdminPolicy)]
    public async Task<bool> LeaveAll()
    {
        if (!Context.Items.Remove(AllKey))
        {
            return false;
        }

        watches.RemoveAll();
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, HubEventDispatcher.AllGroup, Context.ConnectionAborted);
        return true;
    }

    /// <summary>
    /// Hears <c>job-queued</c> for every new (or requeued) job the caller may see (an admin: all; a client key: its
    /// own), without following every job: a page that lists jobs follows the rows it shows (<c>join-job</c>) and
    /// learns of new ones here.
    /// </summary>
    [HubMethodName("join-new")]
    public async Task<bool> JoinNew()
    {
        if (Context.Items.ContainsKey(NewKey))
        {
            return false;
        }

        Context.Items[NewKey] = true;
        watches.AddNew();
        await Groups.AddToGroupAsync(Context.ConnectionId, NewGroupOfCaller(), Context.ConnectionAborted);
        return true;
    }

    [HubMethodName("leave-new")]
    public async Task<bool> LeaveNew()
    {
        if (!Context.Items.Remove(NewKey))
        {
            return false;
        }

        watches.RemoveNew();
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, NewGroupOfCaller(), Context.ConnectionAborted);
        return true;
    }

    public override Task OnConnectedAsync()
    {
        watches.Connected(Context.ConnectionId);
        keyWatcher.Track(Context);
        return base.OnConnectedAsync();
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        watches.Disconnected(Context.ConnectionId);
        keyWatcher.Untrack(Context.ConnectionId);
        // SignalR drops the groups itself; the watch counts are ours.
        foreach (var jobId in Joined())
        {
            watches.Remove(jobId);
        }

        if (Context.Items.Remove(AllKey))
        {
            watches.RemoveAll();
        }

        if (Context.Items.Remove(NewKey))
        {
            watches.RemoveNew();
        }

        return base.OnDisconnectedAsync(exception);
    }

    private string NewGroupOfCaller() =>
        Context.User!.OwnerScope() is { } owner ? HubEventDispatcher.OwnerNewGroup(owner) : HubEventDispatcher.NewGroup;

    private HashSet<Guid> Joined()
    {
        // Invocations of one connection run one at a time, so the set needs no lock.
        if (Context.Items.TryGetValue(JoinedKey, out var value) && value is HashSet<Guid> set)
        {
            return set;
        }

        var created = new HashSet<Guid>();
        Context.Items[JoinedKey] = created;
        return created;
    }

    private async Task<JobStatus?> StatusAsync(Guid jobId, CancellationToken ct)
    {
        var job = await jobs.GetAsync(jobId, null, ct);
        if (job is null)
        {
            return null;
        }

        var position = job.State == JobState.Queued ? await jobs.QueuePositionAsync(jobId, ct) : null;
        return new JobStatus(
            job.Id, job.Kind, job.State, job.Stage, job.Progress, job.Speed, job.EtaSeconds, job.TotalBytes, position,
            job.Attempts, job.Result, job.ErrorCode, job.ErrorMessage);
    }
}
