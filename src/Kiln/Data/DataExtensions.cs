using Npgsql;

namespace Kiln.Data;

internal static class DataExtensions
{
    /// <summary>Registers the one <see cref="NpgsqlDataSource"/> of the process and the migrator.</summary>
    public static WebApplicationBuilder AddKilnData(this WebApplicationBuilder builder)
    {
        var connectionString = builder.Configuration.GetConnectionString("Kiln");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException(
                "ConnectionStrings:Kiln is not set (environment variable ConnectionStrings__Kiln). " +
                "Use ./kiln.sh run to start a private PostgreSQL, or point it at your own server.");
        }

        builder.Services.AddSingleton(_ => CreateDataSource(connectionString));
        builder.Services.AddSingleton<Migrator>();
        return builder;
    }

    public static NpgsqlDataSource CreateDataSource(string connectionString)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(csb.ApplicationName))
        {
            csb.ApplicationName = "kiln";
        }

        // Auto-prepare repeated statements: the queue runs the same few statements thousands of times a second.
        if (csb.MaxAutoPrepare == 0)
        {
            csb.MaxAutoPrepare = 64;
            csb.AutoPrepareMinUsages = 2;
        }

        // A returned connection is not reset (RESET ALL, UNLISTEN *, advisory unlock, DISCARD …, sent ahead of its
        // next command): that reset cost as much as the round trip it rode on (0.18 → 0.04 ms per statement,
        // docs/benchmarks.md, "Queue latency"). Kiln leaves no session state behind: its settings are
        // transaction-local (set_config(…, true)), the migrator unlocks its advisory lock, and the one LISTEN
        // connection (QueueNotifier) runs UNLISTEN * before it goes back to the pool.
        csb.NoResetOnClose = true;

        var dsb = new NpgsqlDataSourceBuilder(csb.ConnectionString);
        return dsb.Build();
    }
}
