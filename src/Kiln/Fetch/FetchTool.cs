using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using Kiln.Media.ChildProcesses;
using Kiln.Processing;

namespace Kiln.Fetch;

/// <summary>
/// Runs a download tool (yt-dlp, aria2c) for the fetch downloaders: through <see cref="ChildProcessLauncher"/> (it dies
/// with Kiln), with an environment of its own, stdout lines handed to a parser as they come, and a bounded tail of
/// everything else for the error message. Cancellation (pause, cancel, timeout) kills the whole tree.
/// </summary>
/// <summary>How a tool run ended: its exit code, its output (for errors), its output directory and the bytes it fetched.</summary>
internal sealed record ToolRun(int ExitCode, FetchTool Tool, string OutputDirectory, long ProxiedBytes);

internal sealed class FetchTool(Uri url, Uri proxyUrl)
{
    private const int TailChars = 4000;
    private readonly StringBuilder _tail = new();

    /// <summary>
    /// The last few thousand characters the tool wrote (stderr, and stdout lines the parser did not take), with the
    /// URL redacted, secret query values and the proxy credential removed: tools echo them in their errors, and this
    /// text goes to the log and the job's error message.
    /// </summary>
    public string Tail
    {
        get
        {
            string text;
            lock (_tail)
            {
                text = _tail.ToString();
            }

            text = text.Replace(url.AbsoluteUri, FetchUrl.Redact(url), StringComparison.Ordinal)
                .Replace(proxyUrl.UserInfo, "kiln:REDACTED", StringComparison.Ordinal);
            foreach (var secret in FetchUrl.SecretValues(url).Where(v => v.Length > 0).OrderByDescending(v => v.Length))
            {
                text = text.Replace(secret, "REDACTED", StringComparison.Ordinal);
            }

            return text;
        }
    }

    /// <summary>
    /// The part both tool downloaders share: the tool's output and home directories under the fetch directory, a
    /// guarded proxy session for its connections, the attempt's time limit, and the proxy's own reason when it refused
    /// a connection (the tool only saw a 403 or a reset). The caller judges the exit code and finds the file.
    /// </summary>
    public static async Task<ToolRun> RunThroughProxyAsync(
        FetchProxy proxy, FetchOptions o, Uri url, string directory, string subDirectory, string program,
        Func<string, Uri, IEnumerable<string>> arguments, string toolName, string setting, Func<string, bool> onLine,
        IProgress<JobProgress> progress, CancellationToken ct)
    {
        var output = Path.Combine(directory, subDirectory);
        var home = Path.Combine(directory, "home");
        Directory.CreateDirectory(output);
        Directory.CreateDirectory(home);
        progress.Report(new JobProgress(0, "resolving"));

        using var session = await proxy.OpenSessionAsync(o.MaxBytes, ct);
        using var duration = new CancellationTokenSource(TimeSpan.FromSeconds(o.MaxDurationSeconds));
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, duration.Token);
        var tool = new FetchTool(url, session.Url);
        int exitCode;
        try
        {
            exitCode = await tool.RunAsync(StartInfo(program, arguments(output, session.Url), home), toolName, setting, onLine, linked.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && duration.IsCancellationRequested)
        {
            throw new JobFailedException("fetch.timeout", $"The attempt ran longer than {o.MaxDurationSeconds} s (Kiln:Fetch:MaxDurationSeconds); retrying resumes.", retryable: true);
        }

        if (session.Failure is { } failure)
        {
            throw new JobFailedException(failure.Code, failure.Message);
        }

        return new ToolRun(exitCode, tool, output, session.Bytes);
    }

    /// <summary>
    /// A start info whose environment is not Kiln's: a private HOME and XDG directories (no user config or plugins),
    /// no Python user site, a fixed PATH, and no inherited proxy variables or PYTHONPATH. Debian's yt-dlp (2023.03) has
    /// no <c>--no-plugins</c>; it loads plugins from the user's config directories and Python's user site, both empty here.
    /// </summary>
    public static ProcessStartInfo StartInfo(string program, IEnumerable<string> arguments, string home)
    {
        var psi = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        psi.Environment["HOME"] = home;
        psi.Environment["XDG_CONFIG_HOME"] = Path.Combine(home, "config");
        psi.Environment["XDG_CACHE_HOME"] = Path.Combine(home, "cache");
        psi.Environment["LANG"] = "C.UTF-8";
        psi.Environment["PYTHONNOUSERSITE"] = "1";
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        return psi;
    }

    /// <summary>Runs the tool to its exit; <paramref name="onLine"/> gets each stdout line and says whether it used it.</summary>
    public async Task<int> RunAsync(ProcessStartInfo startInfo, string toolName, string setting, Func<string, bool> onLine, CancellationToken ct)
    {
        Process started;
        try
        {
            started = await ChildProcessLauncher.StartAsync(startInfo, ct);
        }
        catch (Win32Exception e)
        {
            throw new JobFailedException("fetch.tool_missing", $"Cannot start {toolName}: {e.Message}. Install it or set {setting}.", inner: e);
        }

        using var process = started;
        process.StandardInput.Close();
        var stdout = PumpAsync(process.StandardOutput, onLine, ct);
        var stderr = PumpAsync(process.StandardError, _ => false, ct);
        try
        {
            await process.WaitForExitAsync(ct);
            await Task.WhenAll(stdout, stderr);
            return process.ExitCode;
        }
        finally
        {
            // Pause, cancel and timeouts kill the tool and what it started (ffmpeg); the partial files stay.
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None)
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>The tail's last <paramref name="chars"/> characters, for an error message.</summary>
    public string LastOutput(int chars)
    {
        var text = Tail;
        return text.Length <= chars ? text.Trim() : "…" + text[^chars..].Trim();
    }

    private async Task PumpAsync(StreamReader reader, Func<string, bool> onLine, CancellationToken ct)
    {
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (onLine(line))
            {
                continue;
            }

            lock (_tail)
            {
                _tail.AppendLine(line);
                if (_tail.Length > 2 * TailChars)
                {
                    _tail.Remove(0, _tail.Length - TailChars);
                }
            }
        }
    }
}
