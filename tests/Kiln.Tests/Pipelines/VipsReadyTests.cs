using Kiln.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Pipelines;

public sealed class VipsReadyTests
{
    [Fact]
    public void Memory_goes_back_only_after_image_work_has_paused_for_the_idle_time()
    {
        var (time, releases) = (new FakeTimeProvider(), 0);
        using var vips = new VipsReady(Options.Create(new ImageOptions { ReleaseMemoryIdleMilliseconds = 2000 }), NullLogger<VipsReady>.Instance, time, () => releases++);

        var first = vips.JobMemory();
        var second = vips.JobMemory();
        first.Dispose();
        first.Dispose();
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, releases);   // the second job still runs and would fault the same pages in again

        second.Dispose();
        time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Equal(0, releases);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, releases);

        // Jobs that follow each other within the idle time keep the pages: a job running at the deadline skips it.
        vips.JobMemory().Dispose();
        time.Advance(TimeSpan.FromMilliseconds(1500));
        using (vips.JobMemory())
        {
            time.Advance(TimeSpan.FromMilliseconds(1000));
            Assert.Equal(1, releases);
        }

        time.Advance(TimeSpan.FromMilliseconds(2000));
        Assert.Equal(2, releases);
    }

    [Fact]
    public void By_default_uploads_a_few_seconds_apart_keep_the_memory_warm()
    {
        // One upload every few seconds (a person, a script) finds the pages of the last image still mapped: a trim a
        // second after each job made every such job fault and zero them again, ~40 % of its time.
        var (time, releases) = (new FakeTimeProvider(), 0);
        using var vips = new VipsReady(Options.Create(new ImageOptions()), NullLogger<VipsReady>.Instance, time, () => releases++);

        vips.JobMemory().Dispose();
        time.Advance(TimeSpan.FromSeconds(5));
        vips.JobMemory().Dispose();
        time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Equal(0, releases);

        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, releases);
    }

    [Fact]
    public void Nothing_is_released_when_the_setting_is_off()
    {
        var (time, releases) = (new FakeTimeProvider(), 0);
        using var vips = new VipsReady(Options.Create(new ImageOptions { ReleaseMemoryAfterJobs = false }), NullLogger<VipsReady>.Instance, time, () => releases++);

        vips.JobMemory().Dispose();
        time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal(0, releases);
    }
}
