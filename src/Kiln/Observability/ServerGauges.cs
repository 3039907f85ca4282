using Kiln.Storage;
using Npgsql;

namespace Kiln.Observability;

/// <summary>
/// Gauges read when Prometheus scrapes rather than kept up to date: job counts from the database, this node's running
/// jobs, connected remote workers and hub clients, and the data directory's free space (for the disk alert).
/// </summary>
internal static class ServerGauges
{
    private static readonly string[] States = ["waiting", "queued", "running", "paused", "completed", "failed", "cancelled"];

    public static void Register(IServiceProvider services)
    {
        var metrics = services.GetRequiredService<KilnMetrics>();
        var dataSource = services.GetRequiredService<NpgsqlDataSource>();
        var workers = services.GetService<IInProcessWorkerCount>();
        var remote = services.GetService<IRemoteWorkerCount>();
        var hub = services.GetService<IHubConnectionCount>();
        var blobs = services.GetRequiredService<BlobStore>();

        var jobs = metrics.Gauge("kiln_jobs", "Jobs by queue and state (read from the database: aggregate nodes with max, not sum).", "queue", "state");
        var running = metrics.Gauge("kiln_inprocess_running_jobs", "Jobs running in this process.");
        var slots = metrics.Gauge("kiln_inprocess_slots", "Job slots of this process's in-process workers, all queues (0 when they are disabled).");
        slots.Set(workers?.InProcessSlots ?? 0);
        var remoteWorkers = metrics.Gauge("kiln_remote_workers_connected", "Remote workers connected to this node.");
        var hubConnections = metrics.Gauge("kiln_hub_connections", "SignalR hub connections open on this node.");
        var diskFree = metrics.Gauge("kiln_data_disk_free_bytes", "Free bytes on the data directory's file system (for this process).");
        var diskSize = metrics.Gauge("kiln_data_disk_size_bytes", "Size of the data directory's file system.");

        metrics.Registry.AddBeforeCollectCallback(async ct =>
        {
            running.Set(workers?.InProcessRunning ?? 0);
            remoteWorkers.Set(remote?.ConnectedWorkers ?? 0);
            hubConnections.Set(hub?.HubConnections ?? 0);
            var drive = new DriveInfo(blobs.Root);
            diskFree.Set(drive.AvailableFreeSpace);
            diskSize.Set(drive.TotalSize);

            // Every queue reports every state, zeros included, so a count that drops to nothing does not go stale.
            await using var cmd = dataSource.CreateCommand("""
                select q.name, s.state, count(j.id)
                from queues q
                cross join unnest(@states) as s(state)
                left join jobs j on j.queue = q.name and j.state = s.state
                group by q.name, s.state
                """);
            cmd.Parameters.AddWithValue("states", States);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                jobs.WithLabels(r.GetString(0), r.GetString(1)).Set(r.GetInt64(2));
            }
        });
    }
}
