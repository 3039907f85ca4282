using System.Net;
using Kiln.Retention;
using Kiln.Storage;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Storage;

public sealed class CleanupServiceTests
{
    [Fact]
    public async Task An_upload_gets_an_expiry_from_the_asset_ttl()
    {
        await using var server = await TestJobs.StartServerAsync(new Dictionary<string, string?> { ["Kiln:Retention:AssetTtlHours"] = "48" });
        var (asset, _) = await TestJobs.UploadAsync(server, server.Admin, []);
        var expiresAt = (await server.Admin.GetJsonAsync($"/api/assets/{asset}"))["asset"]!["expiresAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(expiresAt - DateTimeOffset.UtcNow, TimeSpan.FromHours(47.9), TimeSpan.FromHours(48));
    }

    [Fact]
    public async Task Without_a_ttl_assets_never_expire()
    {
        await using var server = await TestJobs.StartServerAsync();
        var (asset, _) = await TestJobs.UploadAsync(server, server.Admin, []);
        Assert.Null((await server.Admin.GetJsonAsync($"/api/assets/{asset}"))["asset"]!["expiresAt"]);
    }

    [Fact]
    public async Task Expired_assets_are_deleted_periodically_with_their_files()
    {
        // A TTL of about a second and a one-second sweep: the service itself must remove the asset.
        await using var server = await TestJobs.StartServerAsync(new Dictionary<string, string?>
        {
            ["Kiln:Retention:AssetTtlHours"] = "0.0003",
            ["Kiln:Retention:CleanupIntervalSeconds"] = "1",
        });
        var (asset, jobs) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output]);
        await server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
        var original = Path.Combine(server.DataDirectory, "originals", asset.ToString("N"));
        var derivatives = Path.Combine(server.DataDirectory, "derivatives", asset.ToString("N"));
        Assert.True(Directory.Exists(derivatives));

        // The rows go first and the files right after the commit, so wait for both.
        await Poll.UntilAsync(
            async () =>
            {
                using var response = await server.Admin.GetAsync($"/api/assets/{asset}");
                return response.StatusCode != HttpStatusCode.OK && !Directory.Exists(original) && !Directory.Exists(derivatives);
            },
            "the expired asset and its files to be removed");

        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"/api/jobs/{jobs[TestJobs.Output]}")).StatusCode);
    }

    [Fact]
    public async Task Finished_jobs_older_than_the_retention_are_deleted_and_live_ones_kept()
    {
        await using var server = await TestJobs.StartServerAsync(new Dictionary<string, string?> { ["Kiln:Retention:FinishedJobTtlHours"] = "0.0001" });
        var (_, done) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output, TestJobs.Fail]);
        var (_, held) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Gate]);
        await server.WaitForJobAsync(done[TestJobs.Output], ["completed"]);
        await server.WaitForJobAsync(done[TestJobs.Fail], ["failed"]);
        await server.WaitForJobAsync(held[TestJobs.Gate], ["running"]);
        // The TTL (0.36 s) must pass in real time: the database's clock decides what is old, and no fake clock reaches it.
        await Task.Delay(TimeSpan.FromSeconds(0.5));

        var removed = await server.Get<CleanupService>().RemoveOldJobsAsync(CancellationToken.None);

        Assert.Equal(4, removed);
        foreach (var id in done.Values.Append(held["probe"]))
        {
            Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"/api/jobs/{id}")).StatusCode);
        }

        Assert.Equal("running", (await server.WaitForJobAsync(held[TestJobs.Gate], ["running"]))["state"]!.GetValue<string>());
        server.Get<TestGate>().Open();
    }

    [Fact]
    public async Task Without_a_job_retention_age_nothing_is_deleted_by_age()
    {
        await using var server = await TestJobs.StartServerAsync();
        var (_, jobs) = await TestJobs.UploadAsync(server, server.Admin, []);
        await server.WaitForJobAsync(jobs["probe"], ["completed"]);
        Assert.Equal(0, await server.Get<CleanupService>().RemoveOldJobsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task At_start_stale_uploads_and_directories_of_dead_jobs_are_removed_but_live_work_is_kept()
    {
        await using var database = await TestDatabase.CreateAsync();
        var data = Directory.CreateTempSubdirectory("kiln-cleanup-").FullName;
        try
        {
            Guid paused;
            Guid asset;
            await using (var first = await TestJobs.StartServerAsync(database: database, dataDirectory: data))
            {
                var (assetId, jobs) = await TestJobs.UploadAsync(first, first.Admin, [TestJobs.Gate, TestJobs.Output]);
                asset = assetId;
                await first.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);
                paused = jobs[TestJobs.Gate];
                await first.WaitForJobAsync(paused, ["running"]);
                Assert.Equal(HttpStatusCode.OK, (await first.Admin.PostAsync($"/api/jobs/{paused}/pause", null)).StatusCode);
                await first.StopAsync();
            }

            var uploads = Path.Combine(data, "tmp", "uploads");
            var jobsTemp = Path.Combine(data, "tmp", "jobs");
            var stale = Path.Combine(uploads, "stale.part");
            var fresh = Path.Combine(uploads, "fresh.part");
            await File.WriteAllTextAsync(stale, "left by a crash");
            File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-2));
            await File.WriteAllTextAsync(fresh, "another node is receiving this");
            var dead = Path.Combine(jobsTemp, Guid.NewGuid().ToString("N"));
            var live = Path.Combine(jobsTemp, paused.ToString("N"));

            // A queued job (here: due tomorrow) may start its next attempt in its work directory at any moment.
            var queued = Guid.NewGuid();
            await using (var conn = new Npgsql.NpgsqlConnection(database.ConnectionString))
            {
                await conn.OpenAsync();
                await using var cmd = new Npgsql.NpgsqlCommand(
                    "insert into jobs (id, kind, queue, state, run_at) values (@id, 'test.output', 'test', 'queued', now() + interval '1 day')", conn);
                cmd.Parameters.AddWithValue("id", queued);
                await cmd.ExecuteNonQueryAsync();
            }

            var waiting = Path.Combine(jobsTemp, queued.ToString("N"));
            foreach (var dir in new[] { dead, live, waiting })
            {
                Directory.CreateDirectory(dir);
                await File.WriteAllTextAsync(Path.Combine(dir, "partial.bin"), "work");
            }

            // Derivative attempt directories: the completed job's (referenced), one a crash left between the publish
            // rename and the commit (unreferenced, old), one as recent (may be another node's publish in flight),
            // and an old one of the paused job (still live).
            var derivatives = Path.Combine(data, "derivatives", asset.ToString("N"));
            var published = Directory.GetDirectories(derivatives).Single();
            var crashed = Path.Combine(derivatives, $"{Guid.NewGuid():N}-0badcafe");
            var recent = Path.Combine(derivatives, $"{Guid.NewGuid():N}-00c0ffee");
            var pausedAttempt = Path.Combine(derivatives, $"{paused:N}-0f00d000");
            foreach (var dir in new[] { crashed, recent, pausedAttempt })
            {
                Directory.CreateDirectory(dir);
                await File.WriteAllTextAsync(Path.Combine(dir, "out.bin"), "output");
            }

            foreach (var dir in new[] { published, crashed, pausedAttempt })
            {
                Directory.SetLastWriteTimeUtc(dir, DateTime.UtcNow.AddHours(-2));
            }

            await using var second = await TestJobs.StartServerAsync(database: database, dataDirectory: data);
            await Poll.UntilAsync(() => !File.Exists(stale) && !Directory.Exists(dead) && !Directory.Exists(crashed), "the orphans to be removed at start");

            Assert.True(File.Exists(fresh), "a recent upload may belong to another node");
            Assert.True(File.Exists(Path.Combine(live, "partial.bin")), "a paused job keeps its partial work");
            Assert.True(File.Exists(Path.Combine(waiting, "partial.bin")), "a queued job's work directory is kept");
            Assert.True(Directory.Exists(published), "a referenced derivative directory is kept");
            Assert.True(Directory.Exists(recent), "a recent attempt may be between its rename and its commit");
            Assert.True(Directory.Exists(pausedAttempt), "a live job's attempt directory is never touched");
            Assert.Equal(0, await second.Get<CleanupService>().RemoveOrphansAsync(CancellationToken.None));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task A_sweep_deletes_every_expired_asset_once()
    {
        await using var server = await TestJobs.StartServerAsync(new Dictionary<string, string?> { ["Kiln:Retention:AssetTtlHours"] = "0.0001" });
        var (first, _) = await TestJobs.UploadAsync(server, server.Admin, []);
        var (second, _) = await TestJobs.UploadAsync(server, server.Admin, []);
        // The TTL (0.36 s) must pass in real time, as above.
        await Task.Delay(TimeSpan.FromSeconds(0.5));

        var cleanup = server.Get<CleanupService>();
        // The service's own sweep ran at start, before anything expired; the next is minutes away.
        Assert.Equal(2, await cleanup.RemoveExpiredAssetsAsync(CancellationToken.None));
        Assert.Equal(0, await cleanup.RemoveExpiredAssetsAsync(CancellationToken.None));
        foreach (var id in new[] { first, second })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.GetAsync($"/api/assets/{id}")).StatusCode);
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(server.DataDirectory, "originals")));
    }
}
