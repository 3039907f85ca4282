using System.Reflection;
using Npgsql;

namespace Kiln.Data;

/// <summary>
/// Applies the numbered SQL files embedded under Data/Migrations, each in its own transaction, once.
/// An advisory lock keeps two servers starting together from applying the same file twice.
/// </summary>
internal sealed class Migrator(NpgsqlDataSource dataSource, IConfiguration configuration, ILogger<Migrator> logger)
{
    private const long LockKey = 0x4B494C4E; // "KILN"

    public async Task<int> MigrateAsync(CancellationToken cancellationToken)
    {
        // The data source's own string has the password stripped, so use the configured one.
        await EnsureDatabaseExistsAsync(configuration.GetConnectionString("Kiln")!, cancellationToken);
        await using var conn = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var cmd = new NpgsqlCommand("select pg_advisory_lock(@k)", conn))
        {
            cmd.Parameters.AddWithValue("k", LockKey);
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            await using (var create = new NpgsqlCommand(
                "create table if not exists schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())",
                conn))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }

            var applied = new HashSet<int>();
            await using (var read = new NpgsqlCommand("select version from schema_migrations", conn))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied.Add(reader.GetInt32(0));
                }
            }

            var count = 0;
            foreach (var (version, name, sql) in LoadMigrations())
            {
                if (applied.Contains(version))
                {
                    continue;
                }

                await using var tx = await conn.BeginTransactionAsync(cancellationToken);
                await using (var apply = new NpgsqlCommand(sql, conn, tx))
                {
                    await apply.ExecuteNonQueryAsync(cancellationToken);
                }

                await using (var record = new NpgsqlCommand("insert into schema_migrations (version, name) values (@v, @n)", conn, tx))
                {
                    record.Parameters.AddWithValue("v", version);
                    record.Parameters.AddWithValue("n", name);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await tx.CommitAsync(cancellationToken);
                logger.LogInformation("Applied migration {Version} {Name}", version, name);
                count++;
            }

            return count;
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(@k)", conn);
            unlock.Parameters.AddWithValue("k", LockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>Creates the configured database when the server has none by that name (a fresh private cluster).</summary>
    internal static async Task EnsureDatabaseExistsAsync(string connectionString, CancellationToken cancellationToken)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        var database = csb.Database;
        if (string.IsNullOrEmpty(database) || database == "postgres")
        {
            return;
        }

        csb.Database = "postgres";
        csb.Pooling = false;
        await using var conn = new NpgsqlConnection(csb.ConnectionString);
        await conn.OpenAsync(cancellationToken);
        await using var exists = new NpgsqlCommand("select 1 from pg_database where datname = @d", conn);
        exists.Parameters.AddWithValue("d", database);
        if (await exists.ExecuteScalarAsync(cancellationToken) is null)
        {
            await using var create = new NpgsqlCommand($"create database \"{database.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", conn);
            try
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateDatabase)
            {
                // Another server created it between our check and our create: that is the outcome we wanted.
            }
        }
    }

    private static IEnumerable<(int Version, string Name, string Sql)> LoadMigrations()
    {
        var assembly = Assembly.GetExecutingAssembly();
        const string prefix = "Kiln.Data.Migrations.";
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Select(n =>
            {
                var name = n[prefix.Length..^4];
                var version = int.Parse(name.AsSpan(0, name.IndexOf('_', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture);
                using var stream = assembly.GetManifestResourceStream(n)!;
                using var reader = new StreamReader(stream);
                return (version, name, reader.ReadToEnd());
            })
            .OrderBy(m => m.version);
    }
}
