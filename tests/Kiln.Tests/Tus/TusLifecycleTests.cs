using System.Net;
using System.Security.Cryptography;
using Kiln.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Tus;

/// <summary>What happens to resumable uploads across time: server restarts and expiry.</summary>
public sealed class TusLifecycleTests
{
    [Fact]
    public async Task An_upload_resumes_after_the_server_restarts_between_chunks()
    {
        await using var database = await TestDatabase.CreateAsync();
        var data = Directory.CreateTempSubdirectory("kiln-test-tus-").FullName;
        try
        {
            var source = RandomNumberGenerator.GetBytes(600_000);
            string location;
            string key;
            await using (var first = await KilnServer.StartAsync(database: database, dataDirectory: data))
            {
                key = first.AdminKey;
                var tus = new TusTestClient(first.Admin);
                location = await tus.CreateAsync(source.Length, TusTestClient.Metadata(("filename", "x.bin"), ("settings", """{"jobs":[]}""")));
                using var patch = await tus.PatchAsync(location, 0, source.AsMemory(0, 250_000));
                Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
            }

            await using var second = await KilnServer.StartAsync(database: database, dataDirectory: data);
            using var client = second.CreateClient(key);
            var resumed = new TusTestClient(client);
            Assert.Equal(250_000, await resumed.OffsetAsync(location));
            using var final = await resumed.ResumeAsync(location, source, 1_000_000);
            var assetId = Guid.Parse(final.Headers.GetValues("Kiln-Asset-Id").Single());
            var original = Path.Combine(data, "originals", assetId.ToString("N"), "original");
            Assert.Equal(SHA256.HashData(source), SHA256.HashData(await File.ReadAllBytesAsync(original)));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task An_idle_upload_expires_answers_410_and_the_sweep_deletes_it_while_a_patched_one_lives_on()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await KilnServer.StartAsync(
            new Dictionary<string, string?> { ["Kiln:Tus:ExpirationHours"] = "1", ["Kiln:Tus:SweepIntervalSeconds"] = "7200" },
            configure: b => b.Services.AddSingleton<TimeProvider>(clock));
        var tus = new TusTestClient(server.Admin);
        var idle = await tus.CreateAsync(100);
        using (var patch = await tus.PatchAsync(idle, 0, new byte[40]))
        {
            Assert.Equal(HttpStatusCode.NoContent, patch.StatusCode);
        }

        clock.Advance(TimeSpan.FromMinutes(50));
        var active = await tus.CreateAsync(100);
        Assert.Equal(40, await tus.OffsetAsync(idle));

        // 70 minutes: the idle upload is past its hour but not yet swept (the sweep runs every two hours here).
        clock.Advance(TimeSpan.FromMinutes(20));
        using (var head = await tus.HeadAsync(idle))
        {
            Assert.Equal(HttpStatusCode.Gone, head.StatusCode);
        }

        using (var late = await tus.PatchAsync(idle, 40, new byte[1]))
        {
            Assert.Equal(HttpStatusCode.Gone, late.StatusCode);
            Assert.Equal("tus.expired", await TusUploadTests.ErrorCodeAsync(late));
        }

        Assert.True(File.Exists(PartialPath(server, idle)));

        // A PATCH moves the active upload's expiry to 130 minutes; without it, it would expire at 110.
        using (var keepAlive = await tus.PatchAsync(active, 0, new byte[10]))
        {
            Assert.Equal(HttpStatusCode.NoContent, keepAlive.StatusCode);
        }

        clock.Advance(TimeSpan.FromMinutes(50));
        await Poll.UntilAsync(() => Task.FromResult(!File.Exists(PartialPath(server, idle))), "the sweep deletes the expired upload's file");
        using (var gone = await tus.HeadAsync(idle))
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }

        Assert.Equal(10, await tus.OffsetAsync(active));
        Assert.True(File.Exists(PartialPath(server, active)));
    }

    private static string PartialPath(KilnServer server, string location) =>
        Path.Combine(server.DataDirectory, "tmp", "tus", Guid.Parse(location.Split('/').Last()).ToString("N") + ".part");
}
