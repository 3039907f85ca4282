using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Queue;
using Kiln.Storage;
using Kiln.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Tests.Api.Support;

/// <summary>
/// Job kinds for API tests, on their own queue <c>test</c>: one that holds until the test opens its gate, one that
/// writes derivative files, one that fails for good. They let tests put jobs in every state without media tools.
/// </summary>
internal static class TestJobs
{
    public const string Queue = "test";
    public const string Gate = "test.gate";
    public const string Output = "test.output";
    public const string Fail = "test.fail";

    /// <summary>Starts a server with the test kinds and four in-process slots for their queue.</summary>
    public static Task<KilnServer> StartServerAsync(IDictionary<string, string?>? settings = null, TestDatabase? database = null, string? dataDirectory = null)
    {
        var all = new Dictionary<string, string?> { ["Kiln:Workers:Slots:test"] = "4" };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>())
        {
            all[k] = v;
        }

        return KilnServer.StartAsync(all, Register, database, dataDirectory);
    }

    public static void Register(WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<TestGate>();
        builder.Services.AddJobKind<GateHandler>(new JobKindInfo(Gate, Queue, Priority: 10, Pausable: true));
        builder.Services.AddJobKind<OutputHandler>(new JobKindInfo(Output, Queue, Priority: 10));
        builder.Services.AddJobKind<FailHandler>(new JobKindInfo(Fail, Queue, Priority: 10, MaxAttempts: 1));
    }

    /// <summary>Uploads one small file that runs the given test jobs after its probe; returns (assetId, jobs by kind).</summary>
    public static async Task<(Guid AssetId, Dictionary<string, Guid> Jobs)> UploadAsync(
        KilnServer server, HttpClient client, string[] kinds, string name = "sample.bin", byte[]? bytes = null, JsonObject? parameters = null)
    {
        var settings = new JsonObject { ["jobs"] = new JsonArray([.. kinds.Select(k => (JsonNode)k)]) };
        if (parameters is not null)
        {
            settings["params"] = parameters;
        }

        var body = await server.UploadAsync([(name, bytes ?? [1, 2, 3, 4, 5, 6, 7, 8])], settings, client);
        var asset = body["assets"]![0]!;
        var jobs = asset["jobs"]!.AsArray().ToDictionary(j => j!["kind"]!.GetValue<string>(), j => j!["id"]!.GetValue<Guid>());
        return (asset["id"]!.GetValue<Guid>(), jobs);
    }

    /// <summary>The bytes <see cref="Output"/> writes for a given length: a pattern, so ranges can be checked.</summary>
    public static byte[] OutputBytes(int length) => Enumerable.Range(0, length).Select(i => (byte)(i % 251)).ToArray();

    public static async Task<JsonObject> GetJsonAsync(this HttpClient client, string url) =>
        (await client.GetFromJsonAsync<JsonObject>(url))!;
}

/// <summary>Holds <see cref="TestJobs.Gate"/> jobs until the test opens it.</summary>
internal sealed class TestGate
{
    private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Opened => _open.Task;

    public void Open() => _open.TrySetResult();
}

internal sealed class GateHandler(TestGate gate) : IJobHandler
{
    public string Kind => TestJobs.Gate;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        context.Progress.Report(new JobProgress(25, "held"));
        await gate.Opened.WaitAsync(cancellationToken);
        return new JobOutcome(Result: new JsonObject { ["released"] = true });
    }
}

/// <summary>Writes <c>params.bytes</c> bytes (default 100 000) as a TEST derivative, plus a small file beside it.</summary>
internal sealed class OutputHandler : IJobHandler
{
    public string Kind => TestJobs.Output;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var length = context.Params["bytes"]?.GetValue<int>() ?? 100_000;
        await File.WriteAllBytesAsync(Path.Combine(context.OutputDirectory, "out.bin"), TestJobs.OutputBytes(length), cancellationToken);
        Directory.CreateDirectory(Path.Combine(context.OutputDirectory, "parts"));
        await File.WriteAllTextAsync(Path.Combine(context.OutputDirectory, "parts", "part1.txt"), "part one", cancellationToken);
        return new JobOutcome(
            Result: new JsonObject { ["bytes"] = length },
            Outputs: [new OutputFile("TEST", "out.bin", "application/octet-stream")]);
    }
}

internal sealed class FailHandler : IJobHandler
{
    public string Kind => TestJobs.Fail;

    public Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken) =>
        throw new JobFailedException("test_failure", "This job always fails.");
}
