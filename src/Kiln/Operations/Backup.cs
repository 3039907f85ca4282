using System.ComponentModel.DataAnnotations;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Kiln.Data;
using Kiln.Core;
using Kiln.Storage;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Operations;

/// <summary>Section <c>Kiln:Backup</c>: the PostgreSQL client tools <c>kiln backup</c> and <c>kiln restore</c> run.</summary>
internal sealed class BackupOptions
{
    public const string Section = "Kiln:Backup";

    /// <summary>pg_dump (Debian: postgresql-client). Kiln__Backup__PgDumpPath.</summary>
    [Required(AllowEmptyStrings = false)]
    public string PgDumpPath { get; set; } = "pg_dump";

    /// <summary>pg_restore. Kiln__Backup__PgRestorePath.</summary>
    [Required(AllowEmptyStrings = false)]
    public string PgRestorePath { get; set; } = "pg_restore";

    /// <summary>Longest a dump or restore may run before it is stopped. Kiln__Backup__TimeoutMinutes.</summary>
    [Range(1, 7 * 24 * 60)]
    public double TimeoutMinutes { get; set; } = 24 * 60;
}

/// <summary>
/// <c>kiln backup DIR</c> / <c>kiln restore DIR</c>. A backup is <c>DIR/kiln.dump</c> (pg_dump, custom format: one
/// consistent snapshot, taken first) plus <c>DIR/data/</c> (the data directory without <c>tmp/</c> and a private
/// PostgreSQL cluster kept in <c>pg/</c>), and <c>DIR/backup.json</c>, written last, which marks it complete.
/// Originals and published derivatives never change once written, so files copied after the dump are at worst
/// orphans (removed by cleanup) and every row of the dump finds its file, unless a delete runs meanwhile.
/// </summary>
internal static class Backup
{
    public const string DumpFile = "kiln.dump";
    public const string DataFolder = "data";
    public const string Manifest = "backup.json";

    /// <summary>Not part of Kiln's state: work in progress, and the private cluster kiln.sh keeps inside ./data.</summary>
    private static readonly string[] Skipped = ["tmp", "pg"];

    public static Command BackupCommand(IKilnComposition composition)
    {
        var dir = new Argument<DirectoryInfo>("dir") { Description = "An empty or new directory for the backup." };
        var command = new Command("backup", "Back up the database (pg_dump) and the data directory into DIR.") { dir };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => StartupErrors.RunAsync(async () =>
        {
            await using var app = Build(composition, parse.UnmatchedTokens);
            var target = parse.GetValue(dir)!.FullName;
            if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
            {
                await Console.Error.WriteLineAsync($"kiln backup: {target} is not empty; give a new or empty directory.");
                return 1;
            }

            Directory.CreateDirectory(target);
            var connection = ConnectionString(app);
            var options = app.Services.GetRequiredService<IOptions<BackupOptions>>().Value;
            await RunToolAsync(options.PgDumpPath, options, connection, ["--format=custom", "--no-owner", "--file", Path.Combine(target, DumpFile)], ct);
            var (files, bytes) = CopyTree(app.Services.GetRequiredService<BlobStore>().Root, Path.Combine(target, DataFolder), Skipped, ct);
            var manifest = new { format = 1, createdAt = DateTimeOffset.UtcNow, database = new NpgsqlConnectionStringBuilder(connection).Database, files, bytes };
            await File.WriteAllTextAsync(Path.Combine(target, Manifest), JsonSerializer.Serialize(manifest), ct);
            Console.WriteLine($"backed up the database and {files} files ({bytes} bytes) to {target}");
            return 0;
        }));
        return command;
    }

    public static Command RestoreCommand(IKilnComposition composition)
    {
        var dir = new Argument<DirectoryInfo>("dir") { Description = "A directory written by kiln backup." };
        var force = new Option<bool>("--force") { Description = "Replace a database and data directory that are not empty (everything in them is lost)." };
        var command = new Command("restore", "Restore a backup into the configured database and data directory; refuses non-empty ones unless --force.") { dir, force };
        command.TreatUnmatchedTokensAsErrors = false;
        command.SetAction((parse, ct) => StartupErrors.RunAsync(async () =>
        {
            await using var app = Build(composition, parse.UnmatchedTokens);
            var source = parse.GetValue(dir)!.FullName;
            if (!File.Exists(Path.Combine(source, Manifest)) || !File.Exists(Path.Combine(source, DumpFile)))
            {
                await Console.Error.WriteLineAsync($"kiln restore: {source} is not a complete backup (no {Manifest} or {DumpFile}).");
                return 1;
            }

            var connection = ConnectionString(app);
            var data = app.Services.GetRequiredService<BlobStore>().Root;
            await Migrator.EnsureDatabaseExistsAsync(connection, ct);
            var tables = await CountTablesAsync(connection, ct);
            var entries = Directory.EnumerateFileSystemEntries(data).Select(Path.GetFileName).Where(n => !Skipped.Contains(n)).ToList();
            if ((tables > 0 || entries.Count > 0) && !parse.GetValue(force))
            {
                await Console.Error.WriteLineAsync(
                    $"kiln restore: the target is not empty (database: {tables} tables; {data}: {string.Join(", ", entries.Take(5))}); add --force to replace it.");
                return 1;
            }

            await ResetSchemaAsync(connection, ct);
            var options = app.Services.GetRequiredService<IOptions<BackupOptions>>().Value;
            await RunToolAsync(options.PgRestorePath, options, connection, ["--no-owner", "--exit-on-error", "--single-transaction", Path.Combine(source, DumpFile)], ct);
            foreach (var name in entries)
            {
                var path = Path.Combine(data, name!);
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
                else
                {
                    File.Delete(path);
                }
            }

            var (files, bytes) = CopyTree(Path.Combine(source, DataFolder), data, [], ct);
            Console.WriteLine($"restored the database and {files} files ({bytes} bytes) from {source}; start Kiln to bring the schema up to date");
            return 0;
        }));
        return command;
    }

    private static WebApplication Build(IKilnComposition composition, IEnumerable<string> args) => composition.Build([.. args, "--Kiln:Logging:StandardError=true"], b =>
        b.Services.AddOptions<BackupOptions>().BindConfiguration(BackupOptions.Section).ValidateDataAnnotations().ValidateOnStart());

    private static string ConnectionString(WebApplication app)
    {
        app.Services.GetService<IStartupValidator>()?.Validate();
        return app.Configuration.GetConnectionString("Kiln")!;
    }

    private static async Task<long> CountTablesAsync(string connection, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(connection);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("select count(*) from pg_tables where schemaname = 'public'", conn);
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>An empty public schema, so tables a newer Kiln added (not in the dump) go too.</summary>
    private static async Task ResetSchemaAsync(string connection, CancellationToken ct)
    {
        await using var conn = new NpgsqlConnection(connection);
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand("drop schema public cascade; create schema public", conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Runs pg_dump or pg_restore against the configured database; the password travels in PGPASSWORD, never on the command line.</summary>
    private static async Task RunToolAsync(string tool, BackupOptions options, string connection, string[] args, CancellationToken ct)
    {
        var csb = new NpgsqlConnectionStringBuilder(connection);
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("--host=" + csb.Host);
        psi.ArgumentList.Add("--port=" + csb.Port);
        psi.ArgumentList.Add("--username=" + csb.Username);
        psi.ArgumentList.Add("--dbname=" + csb.Database);
        psi.ArgumentList.Add("--no-password");
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["PGPASSWORD"] = csb.Password ?? "";
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromMinutes(options.TimeoutMinutes));
        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new KilnStartupException($"{tool} cannot be started ({e.Message}): install postgresql-client or set Kiln:Backup:{(tool == options.PgDumpPath ? "PgDumpPath" : "PgRestorePath")}.", e);
        }

        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            await stdout;
            if (process.ExitCode != 0)
            {
                throw new KilnStartupException($"{Path.GetFileName(tool)} failed with exit code {process.ExitCode}: {(await stderr).Trim()}");
            }
        }
    }

    /// <summary>Copies a directory tree file by file (the file system clones where it can); returns files and bytes.</summary>
    private static (int Files, long Bytes) CopyTree(string from, string to, string[] skipTopLevel, CancellationToken ct)
    {
        Directory.CreateDirectory(to);
        var files = 0;
        long bytes = 0;
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            if (skipTopLevel.Contains(entry.Name))
            {
                continue;
            }

            var items = entry is DirectoryInfo d ? d.EnumerateFiles("*", SearchOption.AllDirectories) : [(FileInfo)entry];
            foreach (var file in items)
            {
                ct.ThrowIfCancellationRequested();
                var destination = Path.Combine(to, Path.GetRelativePath(from, file.FullName));
                Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
                file.CopyTo(destination, overwrite: false);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(destination, file.UnixFileMode);
                }

                files++;
                bytes += file.Length;
            }
        }

        return (files, bytes);
    }
}
