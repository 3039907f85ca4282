using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Npgsql;

namespace Kiln.Bench;

/// <summary>
/// What the hub and remote-worker benchmarks share: a fresh database on KILN_BENCH_PG, a Kiln server in its own
/// process (so its memory can be read apart from the clients'), <c>kiln worker</c> processes, and test jobs
/// inserted straight into the queue so enqueueing is not part of what is measured.
/// </summary>
internal static partial class HubBench
{
    public const string ReadyLine = "KILN-BENCH-READY ";

    public static string ServerConnectionString() =>
        Environment.GetEnvironmentVariable("KILN_BENCH_PG")
        ?? throw new InvalidOperationException("Set KILN_BENCH_PG to a PostgreSQL connection string (e.g. $(cat /var/tmp/devpg/connstr)).");

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix, CancellationToken ct)
    {
        var admin = new NpgsqlConnectionStringBuilder(ServerConnectionString()) { Database = "postgres", Pooling = false };
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 13, 60)];
        await using (var conn = new NpgsqlConnection(admin.ConnectionString))
        {
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand($"create database {name}", conn);
            await cmd.ExecuteNonQueryAsync(ct);
        }

        return new NpgsqlConnectionStringBuilder(ServerConnectionString()) { Database = name }.ConnectionString;
    }

    public static async Task DropDatabaseAsync(string connectionString)
    {
        NpgsqlConnection.ClearAllPools();
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database;
        var admin = new NpgsqlConnectionStringBuilder(ServerConnectionString()) { Database = "postgres", Pooling = false };
        await using var conn = new NpgsqlConnection(admin.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"drop database if exists {name} with (force)", conn);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Starts a server (<c>Kiln.Bench serve</c>, i.e. KilnApp.Build in a child process) and waits until it answers.</summary>
    public static async Task<BenchServer> StartServerAsync(string connectionString, IEnumerable<string> settings, CancellationToken ct)
    {
        var port = FreePort();
        var data = Directory.CreateTempSubdirectory("kiln-bench-data-").FullName;
        var args = new List<string>
        {
            typeof(HubBench).Assembly.Location, "serve",
            $"--urls=http://127.0.0.1:{port}",
            $"--ConnectionStrings:Kiln={connectionString}",
            $"--Kiln:DataDirectory={data}",
            "--Kiln:Logging:Format=simple",
            "--Logging:LogLevel:Default=Warning",
            "--Kiln:Security:CreateAdminKeyOnFirstStart=false",
            "--Kiln:Security:PerKeyRequestsPerSecond=0",
            "--Kiln:Security:GlobalRequestsPerSecond=0",
            "--Kiln:Testing:EnableTestKinds=true",
            "--Kiln:RemoteWorkers:MaxSlotsPerWorker=10000",
            "--Kiln:Workers:Slots:default=0",

            // Retention would prune finished jobs mid-run, and pruning is not what is measured.
            "--Kiln:Queue:KeepCompleted=100000000",
        };
        args.AddRange(settings.Select(s => "--" + s));
        var process = ChildProcess.Start("dotnet", args, new Dictionary<string, string>());
        var ready = await process.WaitForLineAsync(ReadyLine, TimeSpan.FromSeconds(60), ct);
        var server = new BenchServer(process, new Uri($"http://127.0.0.1:{port}/"), ready[ReadyLine.Length..].Trim(), data);
        return server;
    }

    /// <summary>Starts <c>kiln worker</c> from the benchmark's output directory and waits until the server lists it.</summary>
    public static async Task<ChildProcess> StartWorkerAsync(BenchServer server, string token, string name, int slots, CancellationToken ct)
    {
        var kiln = Path.Combine(AppContext.BaseDirectory, "kiln.dll");
        var worker = ChildProcess.Start(
            "dotnet",
            [kiln, "worker", "--server", server.BaseAddress.ToString(), "--name", name, "--slots", slots.ToString(CultureInfo.InvariantCulture),
                "--kinds", "test.sleep", "--Kiln:Testing:EnableTestKinds=true", "--Kiln:Logging:Format=simple", "--Logging:LogLevel:Default=Warning"],
            new Dictionary<string, string> { ["KILN_WORKER_TOKEN"] = token });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await server.Admin.GetFromJsonAsync<JsonArray>("/api/workers", ct))!.All(w => w!["name"]!.GetValue<string>() != name))
        {
            if (DateTime.UtcNow > deadline || worker.HasExited)
            {
                throw new InvalidOperationException("The worker did not connect:\n" + worker.Output);
            }

            await Task.Delay(100, ct);
        }

        return worker;
    }

    public static async Task<string> CreateWorkerTokenAsync(BenchServer server, CancellationToken ct)
    {
        using var response = await server.Admin.PostAsJsonAsync("/api/workers/tokens", new { name = "bench" }, ct);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonObject>(ct))!["token"]!.GetValue<string>();
    }

    /// <summary>
    /// Inserts test.sleep jobs that will not run until <see cref="ReleaseAsync"/>. With <paramref name="spreadMs"/>,
    /// each job first waits a random phase up to that long, so jobs released together do not report in lockstep.
    /// </summary>
    public static async Task<Guid[]> InsertHeldJobsAsync(NpgsqlDataSource db, int count, JsonObject parameters, CancellationToken ct, int spreadMs = 0)
    {
        await using (var queue = db.CreateCommand("insert into queues (name, keep_completed) values ('test', 100000000) on conflict (name) do update set keep_completed = 100000000"))
        {
            await queue.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = db.CreateCommand("""
            insert into jobs (id, kind, queue, state, priority, run_at, max_attempts, params)
            select gen_random_uuid(), 'test.sleep', 'test', 'queued', 10, now() + interval '1 day', 3,
                @params::jsonb || jsonb_build_object('phaseMs', floor(random() * @spread))
            from generate_series(1, @n)
            returning id
            """);
        cmd.Parameters.AddWithValue("params", parameters.ToJsonString());
        cmd.Parameters.AddWithValue("n", count);
        cmd.Parameters.AddWithValue("spread", spreadMs);
        var ids = new List<Guid>(count);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            ids.Add(r.GetGuid(0));
        }

        return [.. ids];
    }

    /// <summary>Makes held jobs ready and wakes the servers.</summary>
    public static async Task ReleaseAsync(NpgsqlDataSource db, Guid[] ids, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("update jobs set run_at = now() where id = any(@ids); select pg_notify('kiln_jobs', 'test');");
        cmd.Parameters.AddWithValue("ids", ids);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Test jobs still queued (and ready) or running: two partial-index probes, cheap enough to poll.</summary>
    public static async Task<long> CountUnfinishedAsync(NpgsqlDataSource db, CancellationToken ct)
    {
        await using var cmd = db.CreateCommand("""
            select (select count(*) from jobs where queue = 'test' and state = 'queued' and run_at <= now())
                 + (select count(*) from jobs where queue = 'test' and state = 'running')
            """);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Resident memory of a process, from /proc.</summary>
    public static long RssBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }

        return 0;
    }

    public static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Count) - 1, 0, sorted.Count - 1)];

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);
}

/// <summary>A running benchmark server and an admin client for it.</summary>
internal sealed class BenchServer(ChildProcess process, Uri baseAddress, string adminKey, string dataDirectory) : IAsyncDisposable
{
    public ChildProcess Process { get; } = process;

    public Uri BaseAddress { get; } = baseAddress;

    public string AdminKey { get; } = adminKey;

    public HttpClient Admin { get; } = new()
    {
        BaseAddress = baseAddress,
        DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", adminKey) },
    };

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        await Process.DisposeAsync();
        Directory.Delete(dataDirectory, recursive: true);
    }
}

/// <summary>A child process whose output is kept; stopped with SIGTERM (then SIGKILL) on dispose.</summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();

    private ChildProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output => string.Join('\n', _lines.TakeLast(40));

    public static ChildProcess Start(string file, IEnumerable<string> args, IDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.Add(e.Data);
        process.ErrorDataReceived += (_, e) => child.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    public async Task<string> WaitForLineAsync(string prefix, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            if (_lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) is { } line)
            {
                return line;
            }

            await Task.Delay(50, ct);
        }

        throw new InvalidOperationException($"No '{prefix}' from the child process:\n{Output}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _ = HubBench.Kill(_process.Id, 15);
            try
            {
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        _process.Dispose();
    }

    private void Add(string? line)
    {
        if (line is not null)
        {
            _lines.Enqueue(line);
        }
    }
}
