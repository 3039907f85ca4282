using Kiln.Media.ChildProcesses;

namespace Kiln.Core;

/// <summary>At start (server and <c>kiln worker</c>): kill tools a previous, dead Kiln left running.</summary>
internal static class OrphanSweep
{
    public static void Run(ILogger logger)
    {
        var killed = ChildProcessLauncher.SweepOrphans();
        if (killed.Count > 0)
        {
            logger.LogWarning("Killed {Count} child processes left by a Kiln process that is gone: pids {Pids}", killed.Count, string.Join(", ", killed));
        }

        if (!ChildProcessLauncher.DiesWithParent)
        {
            logger.LogWarning("setpriv (util-linux) is not on PATH: ffmpeg and other tools would outlive a killed Kiln until the next start sweeps them");
        }
    }
}
