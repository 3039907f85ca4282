using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;
using Npgsql;

namespace Kiln.Tests.Operations;

/// <summary><c>kiln backup</c> and <c>kiln restore</c> as an operator runs them: the built executable, configured by environment.</summary>
public sealed class BackupRestoreTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;
    private string _backup = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-backup-data-").FullName;
        _backup = Path.Combine(Path.GetTempPath(), "kiln-backup-" + Guid.NewGuid().ToString("N"));
    }

    public async ValueTask DisposeAsync()
    {
        await _database.DisposeAsync();
        foreach (var dir in new[] { _data, _backup })
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    [Fact]
    public async Task A_wiped_database_and_data_directory_come_back_with_every_file_byte_for_byte_every_job_and_transcript()
    {
        Dictionary<Guid, string> hashes;
        List<string> jobs;
        string transcript;
        Guid photoId;
        await using (var server = await TestJobs.StartServerAsync(database: _database, dataDirectory: _data))
        {
            var photo = await File.ReadAllBytesAsync(TestPaths.CorpusFile("Landscape_1.jpg"));
            var (a, aJobs) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output], "photo.jpg", photo);
            var (b, bJobs) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output, TestJobs.Fail], "blob.bin", RandomNumberGenerator.GetBytes(70_000));
            foreach (var id in aJobs.Values.Concat(bJobs.Values))
            {
                await server.WaitForJobAsync(id, ["completed", "failed"]);
            }

            photoId = a;
            using (var edit = await server.Admin.PutAsJsonAsync($"/api/assets/{a}/transcripts", new { text = "A hillside at dusk.", language = "en" }))
            {
                edit.EnsureSuccessStatusCode();
            }

            transcript = (await server.Admin.GetJsonAsync($"/api/assets/{a}/transcripts/active")).ToJsonString();
            hashes = await DownloadHashesAsync(server, [a, b]);
            jobs = await JobsAsync(server);
            Assert.Equal(4, hashes.Count); // two originals, two derivatives
            Assert.Equal(5, jobs.Count);
            Assert.Contains(jobs, j => j.EndsWith("test.fail failed", StringComparison.Ordinal));
        }

        var backup = await KilnProcess.RunAsync(Environment(), "backup", _backup);
        Assert.True(backup.ExitCode == 0, backup.Stderr);
        Assert.True(File.Exists(Path.Combine(_backup, "kiln.dump")));

        // A restore never overwrites a live installation by accident.
        var refused = await KilnProcess.RunAsync(Environment(), "restore", _backup);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--force", refused.Stderr, StringComparison.Ordinal);

        // Wipe both.
        await using (var conn = new NpgsqlConnection(_database.ConnectionString))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("drop schema public cascade; create schema public", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        NpgsqlConnection.ClearAllPools();
        Directory.Delete(_data, recursive: true);
        Directory.CreateDirectory(_data);

        var restored = await KilnProcess.RunAsync(Environment(), "restore", _backup);
        Assert.True(restored.ExitCode == 0, restored.Stderr);

        await using (var server = await TestJobs.StartServerAsync(database: _database, dataDirectory: _data))
        {
            Assert.Equal(jobs, await JobsAsync(server));
            Assert.Equal(transcript, (await server.Admin.GetJsonAsync($"/api/assets/{photoId}/transcripts/active")).ToJsonString());
            Assert.Contains("A hillside at dusk.", transcript, StringComparison.Ordinal);
            Assert.Equal(hashes, await DownloadHashesAsync(server, [.. hashes.Keys], filesGiven: true));
        }
    }

    private Dictionary<string, string> Environment() => new()
    {
        ["ConnectionStrings__Kiln"] = _database.ConnectionString,
        ["Kiln__DataDirectory"] = _data,
        ["Kiln__Logging__Format"] = "simple",
    };

    /// <summary>SHA-256 of every file of the assets (original and derivatives), by file id; or of the given file ids.</summary>
    private static async Task<Dictionary<Guid, string>> DownloadHashesAsync(KilnServer server, Guid[] ids, bool filesGiven = false)
    {
        var files = new List<Guid>();
        if (filesGiven)
        {
            files.AddRange(ids);
        }
        else
        {
            foreach (var asset in ids)
            {
                var details = await server.Admin.GetJsonAsync($"/api/assets/{asset}");
                files.Add(asset);
                files.AddRange(details["derivatives"]!.AsArray().Select(d => d!["id"]!.GetValue<Guid>()));
            }
        }

        var hashes = new Dictionary<Guid, string>();
        foreach (var file in files)
        {
            using var response = await server.Admin.GetAsync($"/api/files/{file}/download");
            Assert.True(response.IsSuccessStatusCode, $"{file}: {(int)response.StatusCode}");
            hashes[file] = Convert.ToHexString(SHA256.HashData(await response.Content.ReadAsByteArrayAsync()));
        }

        return hashes;
    }

    private static async Task<List<string>> JobsAsync(KilnServer server)
    {
        var page = await server.Admin.GetJsonAsync("/api/jobs?pageSize=100");
        return [.. page["items"]!.AsArray().Select(j => $"{j!["id"]} {j["assetId"]} {j["kind"]} {j["state"]}").Order(StringComparer.Ordinal)];
    }
}
