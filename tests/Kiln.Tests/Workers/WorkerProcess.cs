using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Kiln.Tests.Workers;

/// <summary>
/// A real <c>kiln worker</c> process (the built kiln.dll beside the tests), with test kinds enabled. Its output is
/// kept for assertions and failure messages.
/// </summary>
public sealed partial class WorkerProcess : IAsyncDisposable
{
    private const int Sigterm = 15;

    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private bool _disposed;

    private WorkerProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output => string.Join('\n', _output);

    public static WorkerProcess Start(Uri server, string token, string name, int slots = 2, params string[] extra)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "kiln.dll"));
        info.ArgumentList.Add("worker");
        info.ArgumentList.Add("--server");
        info.ArgumentList.Add(server.ToString());
        info.ArgumentList.Add("--name");
        info.ArgumentList.Add(name);
        info.ArgumentList.Add("--slots");
        info.ArgumentList.Add(slots.ToString(System.Globalization.CultureInfo.InvariantCulture));
        info.ArgumentList.Add("--Kiln:Testing:EnableTestKinds=true");
        info.ArgumentList.Add("--Kiln:Logging:Format=simple");
        foreach (var arg in extra)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["KILN_WORKER_TOKEN"] = token;
        info.Environment["DOTNET_gcServer"] = "0";
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var worker = new WorkerProcess(process);
        process.OutputDataReceived += (_, e) => worker.Add(e.Data);
        process.ErrorDataReceived += (_, e) => worker.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>SIGKILL: the process dies at once, without a word to the server.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM: the worker drains and exits.</summary>
    public void Terminate() => _ = SendSignal(_process.Id, Sigterm);

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Waits for a line of output containing the text.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan? timeout = null)
    {
        try
        {
            await Poll.UntilAsync(() => _output.Any(l => l.Contains(text, StringComparison.Ordinal)), $"the worker to write '{text}'", timeout?.TotalSeconds);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message} Output:\n{Output}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _process.Dispose();
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
