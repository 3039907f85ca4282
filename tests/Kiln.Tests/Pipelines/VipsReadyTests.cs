using Kiln.Pipelines;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kiln.Tests.Pipelines;

public sealed class VipsReadyTests
{
    [Fact]
    public void Memory_goes_back_when_the_last_running_image_job_ends_not_between_overlapping_jobs()
    {
        var releases = 0;
        using var vips = new VipsReady(Options.Create(new ImageOptions()), NullLogger<VipsReady>.Instance, TimeProvider.System, () => releases++);

        var first = vips.JobMemory();
        var second = vips.JobMemory();
        first.Dispose();
        first.Dispose();
        Assert.Equal(0, releases);   // the second job still runs and would fault the same pages in again

        second.Dispose();
        Assert.Equal(1, releases);

        using (vips.JobMemory())
        {
        }

        Assert.Equal(2, releases);
    }

    [Fact]
    public void Nothing_is_released_when_the_setting_is_off()
    {
        var releases = 0;
        using var vips = new VipsReady(Options.Create(new ImageOptions { ReleaseMemoryAfterJobs = false }), NullLogger<VipsReady>.Instance, TimeProvider.System, () => releases++);

        vips.JobMemory().Dispose();

        Assert.Equal(0, releases);
    }
}
