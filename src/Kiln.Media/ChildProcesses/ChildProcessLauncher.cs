using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace Kiln.Media.ChildProcesses;

/// <summary>
/// Starts every child process Kiln runs (ffmpeg, ffprobe, and later yt-dlp, aria2c …) so that none outlives Kiln:
/// <list type="bullet">
/// <item>Through <c>setpriv --pdeathsig KILL --</c> (util-linux), which sets PR_SET_PDEATHSIG and then execs the tool
/// in place: when Kiln dies, even by kill -9, the kernel kills the tool. The pid stays the tool's own.</item>
/// <item>From one dedicated thread that lives as long as the process. PR_SET_PDEATHSIG fires when the <em>thread</em>
/// that forked exits, and .NET forks on the calling thread: a thread-pool thread retired a minute later would kill a
/// healthy child.</item>
/// <item>With <see cref="MarkerVariable"/> = "pid:start-time" of the owner in the child's environment, so the next
/// start can find leftovers (if setpriv was missing, say) by <see cref="SweepOrphans"/> and never touch a process
/// that is not Kiln's child.</item>
/// </list>
/// </summary>
public static class ChildProcessLauncher
{
    /// <summary>Environment variable naming the owning Kiln process as "pid:start-time" (clock ticks since boot).</summary>
    public const string MarkerVariable = "KILN_CHILD_OF";

    private static readonly BlockingCollection<StartRequest> Requests = new();
    private static readonly Lazy<Thread> Starter = new(StartThread);
    private static readonly string? SetprivPath = FindOnPath("setpriv");

    /// <summary>Whether children are bound to Kiln's life (setpriv found); without it only the start-up sweep helps.</summary>
    public static bool DiesWithParent => SetprivPath is not null;

    /// <summary>This process's marker value.</summary>
    public static string OwnMarker { get; } = Marker(Environment.ProcessId, StartTimeOf(Environment.ProcessId));

    /// <summary>Starts <paramref name="startInfo"/> on the launcher thread.</summary>
    /// <exception cref="Win32Exception">The program does not exist or cannot be executed, as <see cref="Process.Start()"/> would.</exception>
    public static Task<Process> StartAsync(ProcessStartInfo startInfo, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(startInfo);
        cancellationToken.ThrowIfCancellationRequested();
        Wrap(startInfo);
        var request = new StartRequest(startInfo);
        _ = Starter.Value;
        Requests.Add(request, cancellationToken);
        return request.Completion.Task;
    }

    /// <summary>
    /// Kills processes whose <see cref="MarkerVariable"/> names an owner that no longer runs (the pid is gone or now
    /// belongs to a process started at another time). Processes without the marker, and children of a live Kiln, are
    /// never touched. Returns the pids it killed.
    /// </summary>
    public static IReadOnlyList<int> SweepOrphans()
    {
        var killed = new List<int>();
        if (!Directory.Exists("/proc"))
        {
            return killed;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId
                || ReadMarker(pid) is not { } marker || IsAlive(marker))
            {
                continue;
            }

            try
            {
                using var orphan = Process.GetProcessById(pid);
                orphan.Kill();
                killed.Add(pid);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or Win32Exception)
            {
                // It exited meanwhile, or it is not ours to kill (another user): leave it.
            }
        }

        return killed;
    }

    private static void Wrap(ProcessStartInfo startInfo)
    {
        // Resolved here so a missing tool still fails at start (Win32Exception), not as setpriv's exit code 127.
        var program = startInfo.FileName.Contains('/', StringComparison.Ordinal) ? startInfo.FileName : FindOnPath(startInfo.FileName);
        if (program is null || !File.Exists(program))
        {
            throw new Win32Exception(2, $"No such file or directory: {startInfo.FileName}");
        }

        startInfo.Environment[MarkerVariable] = OwnMarker;
        if (SetprivPath is null)
        {
            startInfo.FileName = program;
            return;
        }

        startInfo.FileName = SetprivPath;
        string[] prefix = ["--pdeathsig", "KILL", "--", program];
        for (var i = prefix.Length - 1; i >= 0; i--)
        {
            startInfo.ArgumentList.Insert(0, prefix[i]);
        }
    }

    private static Thread StartThread()
    {
        var thread = new Thread(() =>
        {
            foreach (var request in Requests.GetConsumingEnumerable())
            {
                Process? process = null;
                try
                {
                    process = new Process { StartInfo = request.StartInfo };
                    process.Start();
                    request.Completion.SetResult(process);
                }
#pragma warning disable CA1031 // Every failure belongs to the caller; this thread must keep serving.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    process?.Dispose();
                    request.Completion.SetException(e);
                }
            }
        })
        {
            IsBackground = true,
            Name = "Kiln child process launcher",
        };
        thread.Start();
        return thread;
    }

    private static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static string Marker(int pid, long? startTime) => string.Create(CultureInfo.InvariantCulture, $"{pid}:{startTime ?? 0}");

    private static bool IsAlive(string marker)
    {
        var parts = marker.Split(':');
        return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            && StartTimeOf(pid) is { } start && Marker(pid, start) == marker;
    }

    private static string? ReadMarker(int pid)
    {
        try
        {
            var prefix = MarkerVariable + "=";
            return File.ReadAllText($"/proc/{pid}/environ").Split('\0').FirstOrDefault(v => v.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // gone, or another user's process
        }
    }

    /// <summary>Field 22 of /proc/pid/stat: when the process started, in clock ticks since boot; tells a reused pid apart.</summary>
    private static long? StartTimeOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[19], CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    private sealed record StartRequest(ProcessStartInfo StartInfo)
    {
        public TaskCompletionSource<Process> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
