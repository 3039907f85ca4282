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

        var dsb = new NpgsqlDataSourceBuilder(csb.ConnectionString);
        return dsb.Build();
    }
}
