using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text;
using Kiln.Media.ChildProcesses;

namespace Kiln.Media.FFmpeg;

/// <summary>
/// Runs ffmpeg and ffprobe as child processes: arguments through <see cref="ProcessStartInfo.ArgumentList"/>
/// (no shell, no quoting bugs), stdout and stderr drained concurrently (a full pipe would deadlock the child),
/// progress parsed from <c>-progress pipe:1</c>, the whole process tree killed on cancellation, and the tail of
/// stderr carried into the exception when the tool fails. Started by <see cref="ChildProcessLauncher"/>, so they die
/// with Kiln.
/// </summary>
public sealed class FfmpegRunner
{
    private const int StderrTailLines = 20;
    private const int MaxTextOutputChars = 16 * 1024 * 1024;

    public FfmpegRunner(FfmpegOptions? options = null)
    {
        Options = options ?? new FfmpegOptions();
    }

    public FfmpegOptions Options { get; }

    /// <summary>
    /// Runs ffmpeg with <paramref name="arguments"/> (inputs, filters, outputs) and reports progress against
    /// <paramref name="expectedDuration"/>, the length of the output as the probe predicts it.
    /// </summary>
    /// <exception cref="MediaException"><c>media.ffmpeg_failed</c> with the last stderr lines, or <c>media.tool_missing</c>.</exception>
    /// <exception cref="OperationCanceledException">After the process tree has been killed.</exception>
    public async Task RunAsync(
        IReadOnlyList<string> arguments,
        TimeSpan? expectedDuration,
        string stage,
        IProgress<MediaProgress>? progress,
        CancellationToken cancellationToken)
    {
        var tail = new StderrTail(StderrTailLines);
        var exitCode = await RunProcessAsync(
            Options.FfmpegPath,
            BuildFfmpegArguments(arguments, withProgress: true),
            (stdout, ct) => ReadProgressAsync(stdout, expectedDuration, stage, progress, ct),
            tail,
            cancellationToken);
        ThrowIfFailed("ffmpeg", exitCode, tail);
    }

    /// <summary>
    /// Runs ffmpeg whose stdout carries data (for example raw PCM on <c>pipe:1</c>) for
    /// <paramref name="readOutput"/>, which must read until the end of the stream. No <c>-progress</c> here:
    /// stdout is taken, so the consumer reports progress from what it has read.
    /// </summary>
    public async Task RunWithOutputAsync(
        IReadOnlyList<string> arguments,
        Func<Stream, CancellationToken, Task> readOutput,
        CancellationToken cancellationToken)
    {
        var tail = new StderrTail(StderrTailLines);
        var exitCode = await RunProcessAsync(
            Options.FfmpegPath, BuildFfmpegArguments(arguments, withProgress: false), readOutput, tail, cancellationToken);
        ThrowIfFailed("ffmpeg", exitCode, tail);
    }

    /// <summary>Runs ffprobe and returns its exit code, stdout text and stderr tail; the caller decides what a failure means.</summary>
    internal async Task<ToolOutput> RunFfprobeAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var tail = new StderrTail(StderrTailLines);
        var text = new StringBuilder();
        var exitCode = await RunProcessAsync(
            Options.FfprobePath, arguments, (stdout, ct) => ReadTextAsync(stdout, text, ct), tail, cancellationToken);
        return new ToolOutput(exitCode, text.ToString(), tail.ToString());
    }

    /// <summary>The first line of <c>ffmpeg -version</c>; a readiness check that the configured binaries (ffmpeg and ffprobe) run.</summary>
    public async Task<string> GetVersionAsync(CancellationToken cancellationToken)
    {
        await VersionOfAsync(Options.FfprobePath, "ffprobe", cancellationToken);
        return await VersionOfAsync(Options.FfmpegPath, "ffmpeg", cancellationToken);
    }

    private async Task<string> VersionOfAsync(string path, string tool, CancellationToken cancellationToken)
    {
        var tail = new StderrTail(StderrTailLines);
        var text = new StringBuilder();
        var exitCode = await RunProcessAsync(path, ["-hide_banner", "-version"], (stdout, ct) => ReadTextAsync(stdout, text, ct), tail, cancellationToken);
        ThrowIfFailed(tool, exitCode, tail);
        var output = text.ToString();
        var newline = output.IndexOf('\n', StringComparison.Ordinal);
        return (newline < 0 ? output : output[..newline]).Trim();
    }

    /// <summary>
    /// The full ffmpeg argument list the runner executes. <c>-nostdin</c> stops ffmpeg from treating stdin as a
    /// keyboard; <c>-nostats</c> silences the <c>\r</c> status line because <c>-progress</c> replaces it;
    /// warnings only, so the stderr tail shows the lines that explain a failure.
    /// </summary>
    internal static IReadOnlyList<string> BuildFfmpegArguments(IReadOnlyList<string> arguments, bool withProgress)
    {
        var all = new List<string>(arguments.Count + 8) { "-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning" };
        if (withProgress)
        {
            all.Add("-progress");
            all.Add("pipe:1");
        }

        all.AddRange(arguments);
        return all;
    }

    private async Task<int> RunProcessAsync(
        string fileName,
        IReadOnlyList<string> arguments,
        Func<Stream, CancellationToken, Task> readStdout,
        StderrTail tail,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            CreateNoWindow = true,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        Process started;
        try
        {
            // Through the launcher: the child dies with Kiln, even on kill -9, and carries the marker the sweep needs.
            started = await ChildProcessLauncher.StartAsync(startInfo, cancellationToken);
        }
        catch (Win32Exception ex)
        {
            throw new MediaException(
                "media.tool_missing",
                $"Cannot start '{fileName}': {ex.Message}. Install it or set FfmpegOptions.FfmpegPath/FfprobePath.",
                false,
                ex);
        }

        using var process = started;

        // The child gets a closed stdin instead of inheriting ours.
        process.StandardInput.Close();

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var stderrTask = PumpStderrAsync(process.StandardError, tail);
        var stdoutTask = ReadStdoutAsync(readStdout, process.StandardOutput.BaseStream, linked);
        try
        {
            await process.WaitForExitAsync(linked.Token);
            await Task.WhenAll(stdoutTask, stderrTask);
            return process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            // Either the caller cancelled or the stdout consumer failed and cancelled the link; in both cases the
            // child must die now, before anything else is awaited.
            KillTree(process);
            using var reap = new CancellationTokenSource(Options.KillWaitTimeout);
            await WaitQuietlyAsync(process.WaitForExitAsync(reap.Token));
            await WaitQuietlyAsync(stderrTask);
            var consumerFailure = await WaitQuietlyAsync(stdoutTask);
            cancellationToken.ThrowIfCancellationRequested();
            if (consumerFailure is not null and not OperationCanceledException)
            {
                ExceptionDispatchInfo.Throw(consumerFailure);
            }

            throw;
        }
        finally
        {
            if (!HasExited(process))
            {
                KillTree(process);
            }
        }
    }

    private static async Task ReadStdoutAsync(Func<Stream, CancellationToken, Task> readStdout, Stream stdout, CancellationTokenSource linked)
    {
        try
        {
            await readStdout(stdout, linked.Token);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Stop waiting for the process: it would block forever writing to a pipe nobody reads.
            await linked.CancelAsync();
            throw;
        }
    }

    private static async Task ReadProgressAsync(
        Stream stdout, TimeSpan? expectedDuration, string stage, IProgress<MediaProgress>? progress, CancellationToken ct)
    {
        using var reader = new StreamReader(stdout, Encoding.UTF8);
        var parser = new FfmpegProgressReader();
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (parser.Feed(line) is { } block)
            {
                progress?.Report(FfmpegProgressParser.ToMediaProgress(block, expectedDuration, stage));
            }
        }
    }

    private static async Task ReadTextAsync(Stream stdout, StringBuilder text, CancellationToken ct)
    {
        using var reader = new StreamReader(stdout, Encoding.UTF8);
        var buffer = new char[8192];
        int read;
        while ((read = await reader.ReadAsync(buffer, ct)) > 0)
        {
            if (text.Length + read > MaxTextOutputChars)
            {
                throw new MediaException("media.unreadable", "Tool output exceeded " + MaxTextOutputChars + " characters.");
            }

            text.Append(buffer, 0, read);
        }
    }

    private static async Task PumpStderrAsync(StreamReader stderr, StderrTail tail)
    {
        var buffer = new char[4096];
        int read;
        while ((read = await stderr.ReadAsync(buffer)) > 0)
        {
            tail.Append(buffer.AsSpan(0, read));
        }
    }

    private static async Task<Exception?> WaitQuietlyAsync(Task task)
    {
        try
        {
            await task;
            return null;
        }
        catch (Exception ex)
        {
            // Only collected: the caller decides whether this or the cancellation is the error to surface.
            return ex;
        }
    }

    private static void ThrowIfFailed(string tool, int exitCode, StderrTail tail)
    {
        // Checked even on exit code 0: some muxers (hls) log a failed write and carry on, and the job would then
        // fail later as media.hls_incomplete, hiding the cause.
        if (OutOfSpace.InToolOutput(tail.ToString()))
        {
            throw OutOfSpace.Error();
        }

        if (exitCode == 0)
        {
            return;
        }

        // 128+n is "killed by signal n" (the OOM killer, an operator): running again may well succeed.
        var killed = exitCode > 128;
        throw new MediaException(
            "media.ffmpeg_failed",
            string.Create(CultureInfo.InvariantCulture, $"{tool} exited with code {exitCode}:\n{tail}"),
            retryable: killed);
    }

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) when (HasExited(process))
        {
            return; // it exited between the check and the kill
        }
    }

    private static bool HasExited(Process process)
    {
        try
        {
            return process.HasExited;
        }
        catch (InvalidOperationException)
        {
            return true; // never started or already disposed: nothing left to kill
        }
    }
}

/// <summary>What a tool printed and how it exited.</summary>
internal sealed record ToolOutput(int ExitCode, string Stdout, string StderrTail);
