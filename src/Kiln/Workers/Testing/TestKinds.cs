using System.Globalization;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media.FFmpeg;
using Kiln.Processing;
using Kiln.Storage;

namespace Kiln.Workers.Testing;

/// <summary>
/// Job kinds for tests and benchmarks, registered only with <c>Kiln:Testing:EnableTestKinds=true</c> (environment
/// <c>Kiln__Testing__EnableTestKinds=true</c>) on the server and on <c>kiln worker</c> alike. Never enable it in
/// production: anyone who may upload could then queue jobs that only sleep.
/// </summary>
internal static class TestKinds
{
    public const string Setting = "Kiln:Testing:EnableTestKinds";
    public const string Sleep = "test.sleep";
    public const string Ffmpeg = "test.ffmpeg";

    /// <summary>Their own queue, so in-process workers serve them only when <c>Kiln:Workers:Slots:test</c> is set.</summary>
    public const string Queue = "test";

    public static WebApplicationBuilder AddKilnTestKinds(this WebApplicationBuilder builder)
    {
        if (builder.Configuration.GetValue<bool>(Setting))
        {
            builder.Services.AddJobKind<SleepHandler>(new JobKindInfo(Sleep, Queue, Priority: 10, Pausable: true));
            builder.Services.AddJobKind<FfmpegLoopHandler>(new JobKindInfo(Ffmpeg, Queue, Priority: 10));
        }

        return builder;
    }
}

/// <summary>
/// <c>test.sleep</c>: waits <c>phaseMs</c>, then sleeps <c>durationMs</c> (or <c>firstAttemptDurationMs</c> on attempt
/// 1) in <c>steps</c> steps, reporting progress after each and honouring cancellation. <c>output: true</c> writes a small TEST derivative
/// (jobs with an asset); <c>failCode</c> fails it without retry; <c>stamp: true</c> puts the Unix time in
/// microseconds into totalBytes of each report, so a benchmark can measure how long progress takes to arrive.
/// </summary>
internal sealed class SleepHandler : IJobHandler
{
    public string Kind => TestKinds.Sleep;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var p = context.Params;
        var duration = context.Lease.Attempt == 1 && Number(p, "firstAttemptDurationMs") is { } first ? first : Number(p, "durationMs") ?? 1000;
        var steps = (int)Math.Clamp(Number(p, "steps") ?? 10, 1, 100_000);
        var stamp = p["stamp"] is JsonValue s && s.TryGetValue<bool>(out var b) && b;
        if (Number(p, "phaseMs") is { } phase and > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(phase), cancellationToken);
        }

        for (var i = 1; i <= steps; i++)
        {
            if (duration > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(duration / steps), cancellationToken);
            }

            cancellationToken.ThrowIfCancellationRequested();
            long? stampMicros = stamp ? (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks / 10 : null;
            context.Progress.Report(new JobProgress(100.0 * i / steps, "sleep", TotalBytes: stampMicros));
        }

        if (p["failCode"] is JsonValue code && code.TryGetValue<string>(out var failCode))
        {
            throw new JobFailedException(failCode, "Asked to fail.", retryable: false);
        }

        var result = new JsonObject { ["slept"] = duration, ["attempt"] = context.Lease.Attempt };
        if (p["output"] is JsonValue o && o.TryGetValue<bool>(out var output) && output && context.Asset is not null)
        {
            var dir = Path.Combine(context.OutputDirectory, "test");
            Directory.CreateDirectory(dir);
            var text = string.Create(CultureInfo.InvariantCulture, $"job {context.JobId} attempt {context.Lease.Attempt}\n");
            await File.WriteAllTextAsync(Path.Combine(dir, "result.txt"), text, cancellationToken);
            return new JobOutcome(result, [new OutputFile("TEST", "test/result.txt", "text/plain")]);
        }

        return new JobOutcome(result);
    }

    private static double? Number(JsonObject p, string name) =>
        p[name] is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) && d >= 0 ? d : null;
}

/// <summary>
/// <c>test.ffmpeg</c>: runs ffmpeg on an endless real-time test source until cancelled, with <c>token</c> (letters,
/// digits, '-') in its argv so a test can find that one process and watch it die with its owner.
/// </summary>
internal sealed class FfmpegLoopHandler(FfmpegRunner ffmpeg) : IJobHandler
{
    public string Kind => TestKinds.Ffmpeg;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var token = context.Params["token"] is JsonValue v && v.TryGetValue<string>(out var t) && t.Length is > 0 and <= 64
            && t.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') ? t : "none";
        await ffmpeg.RunAsync(
            ["-re", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5", "-metadata", "comment=" + token, "-f", "null", "-"],
            null,
            "ffmpeg",
            null,
            cancellationToken);
        return new JobOutcome(new JsonObject { ["token"] = token });
    }
}
