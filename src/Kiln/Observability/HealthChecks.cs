using System.Runtime.InteropServices;
using Kiln.Core;
using Kiln.Media;
using Kiln.Media.FFmpeg;
using Kiln.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
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

internal sealed class DiskSpaceHealthCheck(BlobStore blobs) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var free = blobs.FreeBytes();
        var data = new Dictionary<string, object> { ["freeBytes"] = free, ["minFreeBytes"] = blobs.MinFreeBytes };
        return Task.FromResult(free >= blobs.MinFreeBytes
            ? HealthCheckResult.Healthy($"{free} bytes free", data)
            : HealthCheckResult.Unhealthy($"Only {free} bytes free under {blobs.Root}; need {blobs.MinFreeBytes}.", data: data));
    }
}

/// <summary>
/// The native tools the pipelines need: the configured ffmpeg and ffprobe run, and libvips loads. Checked once per
/// process (the check is a singleton) and then cached: spawning two processes on every readiness probe buys nothing.
/// </summary>
internal sealed class ToolsHealthCheck(FfmpegRunner ffmpeg) : IHealthCheck
{
    private readonly Lazy<Task<(bool Ok, string Detail)>> _ffmpeg = new(() => CheckFfmpegAsync(ffmpeg));
    private readonly Lazy<(bool Ok, string Detail)> _vips = new(() =>
        NativeLibrary.TryLoad("libvips.so.42", out var handle) ? (Free(handle), "found") : (false, "libvips.so.42 cannot be loaded"));

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var tools = await _ffmpeg.Value.WaitAsync(cancellationToken);
        var data = new Dictionary<string, object> { ["ffmpeg"] = tools.Detail, ["libvips"] = _vips.Value.Detail };
        return tools.Ok && _vips.Value.Ok
            ? HealthCheckResult.Healthy("ffmpeg and libvips found", data)
            : HealthCheckResult.Unhealthy($"ffmpeg: {tools.Detail}; libvips: {_vips.Value.Detail}", data: data);
    }

    private static async Task<(bool Ok, string Detail)> CheckFfmpegAsync(FfmpegRunner runner)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await runner.GetVersionAsync(timeout.Token);
            return (true, "found");
        }
        catch (Exception e) when (e is MediaException or OperationCanceledException)
        {
            return (false, "ffmpeg/ffprobe do not run: " + e.Message);
        }
    }

    private static bool Free(IntPtr handle)
    {
        NativeLibrary.Free(handle);
        return true;
    }
}
