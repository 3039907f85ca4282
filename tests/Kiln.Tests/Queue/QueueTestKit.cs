using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Observability;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Storage;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Kiln.Tests.Queue;

/// <summary>The test job kinds: all run <see cref="ScriptedHandler"/>, told what to do by their params.</summary>
internal static class TestKinds
{
    /// <summary>Queue "test", pausable while running.</summary>
    public const string Run = "test.run";

    /// <summary>Queue "test", not pausable while running.</summary>
    public const string Fixed = "test.fixed";

    /// <summary>Queue "other".</summary>
    public const string Other = "test.other";

    public const string Queue = "test";
    public const string OtherQueue = "other";
}

/// <summary>One start of a handler: which job, which attempt, when, and how it ended.</summary>
internal sealed class JobRun(Guid jobId, string kind, int attempt, Guid leaseId)
{
    public Guid JobId { get; } = jobId;
    public string Kind { get; } = kind;
    public int Attempt { get; } = attempt;
    public Guid LeaseId { get; } = leaseId;
    public long StartedTicks { get; } = Stopwatch.GetTimestamp();
    public DateTimeOffset StartedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Completes with the moment the handler's CancellationToken fired.</summary>
    public TaskCompletionSource<long> Cancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the handler returns or throws, with "ok", "failed" or "cancelled".</summary>
    public TaskCompletionSource<string> Ended { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Shared by the handlers of one test (and of several servers in one test): records every start, counts jobs running
/// at once, and holds the gates blocking jobs wait on.
/// </summary>
internal sealed class JobRecorder
{
    private readonly ConcurrentDictionary<(Guid, int), TaskCompletionSource<JobRun>> _starts = new();
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _gates = new();
    private readonly Lock _maxGate = new();
    private int _running;
    private int _maxRunning;

    public ConcurrentQueue<JobRun> Runs { get; } = new();

    /// <summary>When set, blocking jobs do not block (a restarted server that should just finish the work).</summary>
    public bool OpenGates { get; init; }

    public int Running => Volatile.Read(ref _running);

    public int MaxRunning
    {
        get
        {
            lock (_maxGate)
            {
                return _maxRunning;
            }
        }
    }

    public JobRun Start(JobContext context)
    {
        var run = new JobRun(context.JobId, context.Lease.Kind, context.Lease.Attempt, context.Lease.LeaseId);
        Runs.Enqueue(run);
        var now = Interlocked.Increment(ref _running);
        lock (_maxGate)
        {
            _maxRunning = Math.Max(_maxRunning, now);
        }

        StartSource(run.JobId, run.Attempt).TrySetResult(run);
        return run;
    }

    public void End(JobRun run, string how)
    {
        Interlocked.Decrement(ref _running);
        run.Ended.TrySetResult(how);
    }

    /// <summary>Waits until the job's given attempt has started in a handler (the timeout only guards against a hang).</summary>
    public Task<JobRun> StartedAsync(Guid jobId, int attempt = 1, double? timeoutSeconds = null) =>
        StartSource(jobId, attempt).Task.WaitAsync(TimeSpan.FromSeconds(timeoutSeconds ?? Poll.DefaultTimeoutSeconds), TestContext.Current.CancellationToken);

    public Task GateAsync(Guid jobId, CancellationToken cancellationToken) =>
        OpenGates ? Task.CompletedTask : Gate(jobId).Task.WaitAsync(cancellationToken);

    public void Release(Guid jobId) => Gate(jobId).TrySetResult();

    public IReadOnlyList<JobRun> RunsOf(Guid jobId) => Runs.Where(r => r.JobId == jobId).OrderBy(r => r.StartedTicks).ToList();

    private TaskCompletionSource Gate(Guid jobId) =>
        _gates.GetOrAdd(jobId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    private TaskCompletionSource<JobRun> StartSource(Guid jobId, int attempt) =>
        _starts.GetOrAdd((jobId, attempt), _ => new TaskCompletionSource<JobRun>(TaskCreationOptions.RunContinuationsAsynchronously));
}

/// <summary>
/// A handler that does what its params say, in this order:
/// <c>outputs</c> (array of derivative types: writes one file each), <c>sleepMs</c>, <c>block</c> (waits for
/// <see cref="JobRecorder.Release"/>, reporting progress every <c>progressMs</c> when given), then
/// <c>fail</c> (<c>{"code", "retryable", "times"}</c>: fails while the attempt is at most <c>times</c>, default always).
/// </summary>
internal abstract class ScriptedHandler(JobRecorder recorder, string kind) : IJobHandler
{
    public string Kind => kind;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var run = recorder.Start(context);
        // Callbacks run last-registered first, so the handler may resume (and unregister this) before it runs:
        // the catch below records the cancellation too.
        using var onCancel = cancellationToken.Register(() => run.Cancelled.TrySetResult(Stopwatch.GetTimestamp()));
        var how = "failed";
        try
        {
            var p = context.Params;
            List<OutputFile>? outputs = null;
            if (p["outputs"] is JsonArray types)
            {
                outputs = [];
                foreach (var type in types.Select(t => t!.GetValue<string>()))
                {
                    var name = type.ToLowerInvariant() + ".txt";
                    await File.WriteAllTextAsync(Path.Combine(context.OutputDirectory, name), $"{context.JobId}:{context.Lease.LeaseId}:{type}", cancellationToken);
                    outputs.Add(new OutputFile(type, name, "text/plain"));
                }
            }

            if (p["escape"] is not null)
            {
                outputs = [new OutputFile("ESCAPE", "../../escape.txt", "text/plain")];
            }

            if (p["sleepMs"] is { } sleep)
            {
                // A job that takes time is the script here, not a wait for something.
                await Task.Delay(sleep.GetValue<int>(), cancellationToken);
            }

            if (p["block"] is not null)
            {
                await BlockAsync(context, p["progressMs"]?.GetValue<int>(), cancellationToken);
            }

            if (p["fail"] is JsonObject fail && context.Lease.Attempt <= (fail["times"]?.GetValue<int>() ?? int.MaxValue))
            {
                throw new JobFailedException(
                    fail["code"]?.GetValue<string>() ?? "test_failure",
                    $"Failed on attempt {context.Lease.Attempt} as asked.",
                    fail["retryable"]?.GetValue<bool>() ?? true);
            }

            how = "ok";
            return new JobOutcome(new JsonObject { ["attempt"] = context.Lease.Attempt }, outputs);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            how = "cancelled";
            run.Cancelled.TrySetResult(Stopwatch.GetTimestamp());
            throw;
        }
        finally
        {
            recorder.End(run, how);
        }
    }

    private async Task BlockAsync(JobContext context, int? progressMs, CancellationToken cancellationToken)
    {
        var gate = recorder.GateAsync(context.JobId, cancellationToken);
        if (progressMs is not { } every)
        {
            await gate;
            return;
        }

        var percent = 0.0;
        while (!gate.IsCompleted)
        {
            context.Progress.Report(new JobProgress(percent = Math.Min(99, percent + 1), "blocking"));
            // The progress interval is the behaviour scripted (a job reporting every N ms), not a wait for something.
            await Task.WhenAny(gate, Task.Delay(every, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }

        await gate;
    }
}

internal sealed class RunHandler(JobRecorder recorder) : ScriptedHandler(recorder, TestKinds.Run);

internal sealed class FixedHandler(JobRecorder recorder) : ScriptedHandler(recorder, TestKinds.Fixed);

internal sealed class OtherHandler(JobRecorder recorder) : ScriptedHandler(recorder, TestKinds.Other);

/// <summary>
/// A test class with its own server whose queue "test" has no in-process slots, so its jobs are leased by hand
/// (<see cref="QueueServer.LeaseAsync"/>, <see cref="QueueServer.NewLeaser"/>).
/// </summary>
public abstract class HandLeasedQueueTests : IAsyncLifetime
{
    private KilnServer? _server;

    private protected KilnServer Server => _server ?? throw new InvalidOperationException("The server starts in InitializeAsync.");

    public virtual async ValueTask InitializeAsync() =>
        _server = await QueueServer.StartAsync(new JobRecorder(), new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "0" });

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>Starts a Kiln with the test kinds, small timeouts and 2 slots for queue "test".</summary>
internal static class QueueServer
{
    public static async Task<KilnServer> StartAsync(
        JobRecorder recorder,
        IDictionary<string, string?>? settings = null,
        TestDatabase? database = null,
        string? dataDirectory = null,
        Action<IServiceCollection>? services = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["Kiln:Workers:Slots:test"] = "2",
            ["Kiln:Workers:Slots:other"] = "1",
            ["Kiln:Queue:BackoffBaseSeconds"] = "0.2",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var server = await KilnServer.StartAsync(all, b =>
        {
            b.Services.AddSingleton(recorder);
            b.Services.AddJobKind<RunHandler>(new JobKindInfo(TestKinds.Run, TestKinds.Queue, 10, Pausable: true));
            b.Services.AddJobKind<FixedHandler>(new JobKindInfo(TestKinds.Fixed, TestKinds.Queue, 10));
            b.Services.AddJobKind<OtherHandler>(new JobKindInfo(TestKinds.Other, TestKinds.OtherQueue, 10));
            services?.Invoke(b.Services);
        }, database, dataDirectory);
        await server.Get<QueueNotifier>().Listening.WaitAsync(Poll.DefaultTimeout);
        return server;
    }

    /// <summary>Enqueues one job through <see cref="JobStore"/> and returns its id.</summary>
    public static async Task<Guid> EnqueueAsync(
        this KilnServer server,
        string kind = TestKinds.Run,
        JsonObject? parameters = null,
        int priority = 10,
        DateTimeOffset? runAt = null,
        Guid? parentId = null,
        int maxAttempts = 3,
        Guid? assetId = null)
    {
        var job = NewJob(kind, parameters, priority, runAt, parentId, maxAttempts, assetId);
        await server.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);
        return job.Id;
    }

    public static NewJob NewJob(
        string kind = TestKinds.Run,
        JsonObject? parameters = null,
        int priority = 10,
        DateTimeOffset? runAt = null,
        Guid? parentId = null,
        int maxAttempts = 3,
        Guid? assetId = null) => new()
        {
            Kind = kind,
            Queue = kind == TestKinds.Other ? TestKinds.OtherQueue : TestKinds.Queue,
            Params = parameters,
            Priority = priority,
            RunAt = runAt,
            ParentId = parentId,
            MaxAttempts = maxAttempts,
            AssetId = assetId,
        };

    public static async Task<Job> JobAsync(this KilnServer server, Guid id) =>
        await server.Get<JobStore>().GetAsync(id, null, CancellationToken.None) ?? throw new InvalidOperationException($"No job {id}.");

    /// <summary>Polls the job row until it is in the state; returns it, or fails with the last row seen.</summary>
    public static Task<Job> WaitForStateAsync(this KilnServer server, Guid id, string state, double? timeoutSeconds = null) =>
        Poll.UntilAsync(() => server.JobAsync(id), job => job.State == state, $"job {id} to be {state}", timeoutSeconds);

    /// <summary>Runs SQL against the server's database and returns the first column of the first row.</summary>
    public static async Task<object?> ScalarAsync(this KilnServer server, string sql, params (string Name, object Value)[] parameters)
    {
        await using var cmd = server.Get<NpgsqlDataSource>().CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return await cmd.ExecuteScalarAsync();
    }

    public static Task<int> ExecuteAsync(this KilnServer server, string sql, params (string Name, object Value)[] parameters) =>
        ExecuteCoreAsync(server.Get<NpgsqlDataSource>(), sql, parameters);

    public static Task<LeaseResult> LeaseAsync(this KilnServer server, int max, string worker = "fake-worker", string kind = TestKinds.Run) =>
        server.Get<IJobDispatcher>().LeaseAsync(
            new LeaseRequest(worker, kind == TestKinds.Other ? TestKinds.OtherQueue : TestKinds.Queue, [kind], max), CancellationToken.None);

    /// <summary>A leaser of its own on the server's pool, with the given options and clock (the server's loops keep theirs).</summary>
    public static JobLeaser NewLeaser(this KilnServer server, QueueOptions options, TimeProvider? time = null) =>
        new(server.Get<NpgsqlDataSource>(), server.Get<LeaseRegistry>(), server.Get<IJobEventSink>(), server.Get<KilnMetrics>(),
            Microsoft.Extensions.Options.Options.Create(options), time ?? TimeProvider.System);

    public static double Seconds(long fromTicks, long toTicks) => (toTicks - fromTicks) / (double)Stopwatch.Frequency;

    private static async Task<int> ExecuteCoreAsync(NpgsqlDataSource dataSource, string sql, (string Name, object Value)[] parameters)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value);
        }

        return await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>Assets and their derivatives as stored.</summary>
internal static class AssetKit
{
    /// <summary>Uploads a small file with no pipeline jobs but the probe; returns the asset id.</summary>
    public static async Task<Guid> UploadAssetAsync(this KilnServer server)
    {
        var body = await server.UploadAsync([("data.bin", "some bytes"u8.ToArray())], new JsonObject { ["jobs"] = new JsonArray() });
        return body["assets"]![0]!["id"]!.GetValue<Guid>();
    }

    /// <summary>The asset's derivative rows: type → (path relative to the data directory, size, job).</summary>
    public static async Task<Dictionary<string, (string Path, long Size, Guid? JobId)>> DerivativesAsync(this KilnServer server, Guid assetId)
    {
        await using var cmd = server.Get<NpgsqlDataSource>().CreateCommand("select type, path, size, job_id from derivatives where asset_id = @a");
        cmd.Parameters.AddWithValue("a", assetId);
        var rows = new Dictionary<string, (string, long, Guid?)>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows[r.GetString(0)] = (r.GetString(1), r.GetInt64(2), r.IsDBNull(3) ? null : r.GetGuid(3));
        }

        return rows;
    }

    /// <summary>Every file under the asset's derivative directory, relative to the data directory.</summary>
    public static List<string> DerivativeFiles(string dataDirectory, Guid assetId)
    {
        var dir = Path.Combine(dataDirectory, "derivatives", assetId.ToString("N"));
        return Directory.Exists(dir)
            ? [.. Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dataDirectory, f)).Order(StringComparer.Ordinal)]
            : [];
    }

    /// <summary>Anything left in the job's temporary directories.</summary>
    public static bool HasJobTemp(string dataDirectory, Guid jobId)
    {
        var jobs = Path.Combine(dataDirectory, "tmp", "jobs");
        return Directory.Exists(jobs) && Directory.EnumerateFileSystemEntries(jobs).Any(e => Path.GetFileName(e).StartsWith(jobId.ToString("N"), StringComparison.Ordinal));
    }
}
