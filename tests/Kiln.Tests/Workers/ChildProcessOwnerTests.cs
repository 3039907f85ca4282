using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;
using Kiln.Workers.Testing;

namespace Kiln.Tests.Workers;

/// <summary>No ffmpeg outlives the Kiln that started it, even when Kiln is killed with SIGKILL.</summary>
public sealed class ChildProcessOwnerTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-kill9-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task Ffmpeg_dies_when_its_server_is_killed_with_sigkill()
    {
        // An in-process server shares the database only to enqueue: it runs no test-queue jobs itself.
        await using var enqueuer = await KilnServer.StartAsync(new Dictionary<string, string?> { [TestKinds.Setting] = "true" }, database: _database);
        var (server, _) = await KilnProcess.ServeAsync(new Dictionary<string, string>
        {
            ["ConnectionStrings__Kiln"] = _database.ConnectionString,
            ["Kiln__DataDirectory"] = _data,
            ["Kiln__Testing__EnableTestKinds"] = "true",
            ["Kiln__Workers__Slots__test"] = "1",
        });
        await using (server)
        {
            var token = "kill9-" + Guid.NewGuid().ToString("N");
            var job = new NewJob { Kind = TestKinds.Ffmpeg, Queue = TestKinds.Queue, Params = new JsonObject { ["token"] = token } };
            await enqueuer.Get<JobStore>().EnqueueAsync([job], CancellationToken.None);

            var ffmpeg = 0;
            await Poll.UntilAsync(() => Task.FromResult((ffmpeg = FindProcessWithArgument(token)) != 0), "the job's ffmpeg to start", 120);

            server.KillHard();

            // The source is endless: without PR_SET_PDEATHSIG this ffmpeg would run until the machine stops.
            await Poll.UntilAsync(() => Task.FromResult(!IsRunning(ffmpeg)), "ffmpeg to die with its server", 60);
        }
    }

    private static int FindProcessWithArgument(string argumentPart)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && ReadOrEmpty($"{dir}/cmdline").Contains(argumentPart, StringComparison.Ordinal))
            {
                return pid;
            }
        }

        return 0;
    }

    /// <summary>Running, not a zombie: a killed child of a killed parent is reaped by init, but may linger as Z briefly.</summary>
    private static bool IsRunning(int pid)
    {
        var stat = ReadOrEmpty($"/proc/{pid}/stat");
        return stat.Length > 0 && stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault() is not ('Z' or 'X');
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }
}
