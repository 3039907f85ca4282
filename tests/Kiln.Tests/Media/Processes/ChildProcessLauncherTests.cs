using System.Diagnostics;
using Kiln.Media;
using Kiln.Media.ChildProcesses;
using Kiln.Media.FFmpeg;
using Kiln.Tests.Queue;

namespace Kiln.Tests.Media.Processes;

public sealed class ChildProcessLauncherTests
{
    [Fact]
    public async Task The_sweep_kills_only_marked_children_whose_owner_is_gone()
    {
        // The marker names this test host's pid with another start time: a reused pid, so the owner is gone.
        using var orphan = StartSleep($"{Environment.ProcessId}:1");
        using var ours = StartSleep(ChildProcessLauncher.OwnMarker);
        using var foreign = StartSleep(null);
        try
        {
            var killed = ChildProcessLauncher.SweepOrphans();

            // Not asserted by pid: another test's server start may sweep the same orphan first.
            Assert.DoesNotContain(ours.Id, killed);
            Assert.DoesNotContain(foreign.Id, killed);
            await orphan.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.False(ours.HasExited);
            Assert.False(foreign.HasExited);
        }
        finally
        {
            foreach (var p in new[] { orphan, ours, foreign }.Where(p => !p.HasExited))
            {
                p.Kill();
            }
        }
    }

    [Fact]
    public async Task A_child_started_by_the_launcher_carries_the_owner_marker_and_keeps_its_own_pid()
    {
        var psi = new ProcessStartInfo("sleep") { ArgumentList = { "300" } };
        using var child = await ChildProcessLauncher.StartAsync(psi, TestContext.Current.CancellationToken);
        try
        {
            // setpriv execs the tool in place: the pid the runner kills is the tool itself.
            await Poll.UntilAsync(() => Task.FromResult(File.ReadAllText($"/proc/{child.Id}/comm").Trim() == "sleep"), "setpriv to exec sleep", 60);
            var environ = File.ReadAllText($"/proc/{child.Id}/environ").Split('\0');
            Assert.Contains($"{ChildProcessLauncher.MarkerVariable}={ChildProcessLauncher.OwnMarker}", environ);
            Assert.True(ChildProcessLauncher.DiesWithParent, "setpriv (util-linux) must be installed");
            var status = File.ReadAllLines($"/proc/{child.Id}/status");
            Assert.Contains(status, l => l.StartsWith("PPid:", StringComparison.Ordinal) && l.EndsWith("\t" + Environment.ProcessId, StringComparison.Ordinal));
        }
        finally
        {
            child.Kill();
        }
    }

    [Fact]
    public async Task A_missing_tool_still_fails_at_start_as_tool_missing()
    {
        var runner = new FfmpegRunner(new FfmpegOptions { FfmpegPath = "no-such-ffmpeg-binary" });
        var e = await Assert.ThrowsAsync<MediaException>(() => runner.RunAsync(["-version"], null, "x", null, TestContext.Current.CancellationToken));
        Assert.Equal("media.tool_missing", e.Code);
    }

    [Fact]
    public void A_write_to_a_full_device_is_recognised_as_out_of_space()
    {
        // /dev/full answers every write with ENOSPC: a real full-disk error without mounting anything.
        var e = Assert.ThrowsAny<IOException>(() =>
        {
            using var full = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            full.Write(new byte[4096]);
            full.Flush();
        });
        Assert.True(OutOfSpace.Is(e), $"HResult {e.HResult}: {e.Message}");
    }

    [Fact]
    public async Task Ffmpeg_writing_to_a_full_device_fails_as_retryable_storage_full()
    {
        var runner = new FfmpegRunner();
        var e = await Assert.ThrowsAsync<MediaException>(() => runner.RunAsync(
            ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-f", "rawvideo", "-y", "/dev/full"], null, "x", null, TestContext.Current.CancellationToken));
        Assert.Equal("storage.full", e.Code);
        Assert.True(e.Retryable);
    }

    private static Process StartSleep(string? marker)
    {
        var psi = new ProcessStartInfo("sleep") { ArgumentList = { "300" } };
        if (marker is not null)
        {
            psi.Environment[ChildProcessLauncher.MarkerVariable] = marker;
        }

        return Process.Start(psi)!;
    }
}
