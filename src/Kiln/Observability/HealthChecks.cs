using System.Diagnostics;
using System.Runtime.InteropServices;
using Kiln.Hosting;
using Kiln.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Observability;

internal sealed class DatabaseHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var cmd = dataSource.CreateCommand("select 1");
            await cmd.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
        {
            return HealthCheckResult.Unhealthy("PostgreSQL is not reachable: " + e.Message);
        }
    }
}

internal sealed class DiskSpaceHealthCheck(BlobStore blobs, IOptions<KilnOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var drive = new DriveInfo(blobs.Root);
        var free = drive.AvailableFreeSpace;
        var data = new Dictionary<string, object> { ["freeBytes"] = free, ["minFreeBytes"] = options.Value.MinFreeDiskBytes };
        return Task.FromResult(free >= options.Value.MinFreeDiskBytes
            ? HealthCheckResult.Healthy($"{free} bytes free", data)
            : HealthCheckResult.Unhealthy($"Only {free} bytes free under {blobs.Root}; need {options.Value.MinFreeDiskBytes}.", data: data));
    }
}

/// <summary>The native tools the pipelines need: ffmpeg/ffprobe on PATH and libvips loadable. Checked once, then cached.</summary>
internal sealed class ToolsHealthCheck : IHealthCheck
{
    private readonly Lazy<(bool Ok, string Detail)> _ffmpeg = new(() => CanRun("ffmpeg") && CanRun("ffprobe") ? (true, "found") : (false, "ffmpeg/ffprobe not found on PATH"));
    private readonly Lazy<(bool Ok, string Detail)> _vips = new(() =>
        NativeLibrary.TryLoad("libvips.so.42", out var handle) ? (Free(handle), "found") : (false, "libvips.so.42 cannot be loaded"));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object> { ["ffmpeg"] = _ffmpeg.Value.Detail, ["libvips"] = _vips.Value.Detail };
        return Task.FromResult(_ffmpeg.Value.Ok && _vips.Value.Ok
            ? HealthCheckResult.Healthy("ffmpeg and libvips found", data)
            : HealthCheckResult.Unhealthy($"ffmpeg: {_ffmpeg.Value.Detail}; libvips: {_vips.Value.Detail}", data: data));
    }

    private static bool Free(IntPtr handle)
    {
        NativeLibrary.Free(handle);
        return true;
    }

    private static bool CanRun(string tool)
    {
        try
        {
            var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-version");
            using var process = Process.Start(psi);
            if (process is null)
            {
                return false;
            }

            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            return process.WaitForExit(5000) && process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
