using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Kiln.Tests.Api.Support;

/// <summary>
/// The built <c>kiln.dll</c> run as a real process (<c>dotnet kiln.dll …</c>), configured through environment
/// variables the way an operator would. For the CLI and for what only a process shows (console logs, exit codes).
/// </summary>
internal sealed partial class KilnProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly ConcurrentQueue<string> _stderr = new();

    private KilnProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _stdout.Enqueue(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _stderr.Enqueue(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string Dll { get; } = Path.Combine(AppContext.BaseDirectory, "kiln.dll");

    public IReadOnlyCollection<string> StandardOutput => _stdout;

    public IReadOnlyCollection<string> StandardError => _stderr;

    public bool HasExited => _process.HasExited;

    public int Id => _process.Id;

    /// <summary>SIGKILL to the Kiln process alone, as the OOM killer or an operator's kill -9 would: no shutdown runs.</summary>
    public void KillHard() => _process.Kill(entireProcessTree: false);

    public static KilnProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = Path.GetTempPath(),
        };
        psi.ArgumentList.Add(Dll);
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        // Only what the test sets: nothing from the developer's shell may change what the process does.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("Kiln__", StringComparison.OrdinalIgnoreCase)
            || k.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase) || k.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }

        return new KilnProcess(Process.Start(psi)!);
    }

    /// <summary>Runs a command to its end; returns the exit code and both outputs.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        await using var process = Start(environment, args);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process._process.WaitForExitAsync(timeout.Token);
        process._process.WaitForExit();
        return (process._process.ExitCode, string.Join('\n', process._stdout), string.Join('\n', process._stderr));
    }

    /// <summary>Waits for a line on standard output that matches; returns it.</summary>
    public Task<string> WaitForOutputAsync(Func<string, bool> match, TimeSpan? timeout = null) => WaitForLineAsync(_stdout, match, timeout);

    /// <summary>Waits for a line on standard error that matches; returns it.</summary>
    public Task<string> WaitForErrorAsync(Func<string, bool> match, TimeSpan? timeout = null) => WaitForLineAsync(_stderr, match, timeout);

    private async Task<string> WaitForLineAsync(ConcurrentQueue<string> lines, Func<string, bool> match, TimeSpan? timeout)
    {
        string? line;
        try
        {
            // An exited process writes nothing more: stop waiting then.
            (line, _) = await Poll.UntilAsync(
                () => Task.FromResult((Line: lines.FirstOrDefault(match), Exited: _process.HasExited)),
                seen => seen.Line is not null || seen.Exited,
                "a matching line of output",
                timeout?.TotalSeconds);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{Transcript()}", e);
        }

        return line ?? throw new InvalidOperationException($"The process exited without a matching line of output.\n{Transcript()}");
    }

    private string Transcript() => $"stdout:\n{string.Join('\n', _stdout)}\nstderr:\n{string.Join('\n', _stderr)}";

    /// <summary>Starts <c>kiln serve</c> on a free port and waits until it listens; returns the process and its address.</summary>
    public static async Task<(KilnProcess Process, Uri Address)> ServeAsync(IReadOnlyDictionary<string, string> environment)
    {
        var process = Start(environment, "serve", "--urls", "http://127.0.0.1:0");
        try
        {
            // Generous: a loaded CI machine can take a minute to start a process that JIT-compiles the server.
            var line = await process.WaitForOutputAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(120));
            return (process, new Uri(ListeningAddress().Match(line).Value));
        }
        catch
        {
            // Nobody else holds the process yet: without this a slow start leaks a running server.
            await process.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex ListeningAddress();
}
