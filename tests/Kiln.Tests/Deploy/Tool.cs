using System.Diagnostics;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Deploy;

/// <summary>Runs an installed tool (promtool, docker-compose, systemd-analyze, dpkg …) and captures its output.</summary>
internal static class Tool
{
    public static string DeployDirectory { get; } = Path.Combine(TestPaths.RepoRoot, "deploy");

    public static string Deploy(params string[] parts) => Path.Combine([DeployDirectory, .. parts]);

    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string tool, IEnumerable<string> args, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? DeployDirectory,
        };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
