using Kiln.Core;
using Kiln.Hosting;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Hosting;

/// <summary>A bad setting stops the server at start with a message naming the setting and its environment variable.</summary>
public sealed class SettingsValidationTests : IAsyncLifetime
{
    private TestDatabase _database = null!;
    private string _data = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await TestDatabase.CreateAsync();
        _data = Directory.CreateTempSubdirectory("kiln-settings-").FullName;
    }

    public async ValueTask DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    [Theory]
    [InlineData("Kiln:Uploads:MaxFileBytes", "-1", "Kiln__Uploads__MaxFileBytes")]
    [InlineData("Kiln:Uploads:MaxFiles", "0", "Kiln__Uploads__MaxFiles")]
    [InlineData("Kiln:Uploads:MaxRequestBytes", "0", "Kiln__Uploads__MaxRequestBytes")]
    [InlineData("Kiln:MinFreeDiskBytes", "-5", "Kiln__MinFreeDiskBytes")]
    [InlineData("Kiln:Retention:AssetTtlHours", "-1", "Kiln__Retention__AssetTtlHours")]
    [InlineData("Kiln:Retention:FinishedJobTtlHours", "-1", "Kiln__Retention__FinishedJobTtlHours")]
    [InlineData("Kiln:Retention:CleanupIntervalSeconds", "0", "Kiln__Retention__CleanupIntervalSeconds")]
    [InlineData("Kiln:Security:PerKeyRequestsPerSecond", "-5", "Kiln__Security__PerKeyRequestsPerSecond")]
    [InlineData("Kiln:Security:GlobalRequestsPerSecond", "-1", "Kiln__Security__GlobalRequestsPerSecond")]
    [InlineData("Kiln:Security:MaxRequestBodyBytes", "0", "Kiln__Security__MaxRequestBodyBytes")]
    [InlineData("Kiln:Security:KeyCacheSeconds", "-1", "Kiln__Security__KeyCacheSeconds")]
    [InlineData("Kiln:Security:UrlSigningKey", "c2hvcnQ=", "Kiln__Security__UrlSigningKey")]
    [InlineData("Kiln:Security:CorsOrigins:0", "https://app.example/path", "Kiln:Security:CorsOrigins")]
    [InlineData("Kiln:Security:SignedUrlSeconds", "90000", "Kiln:Security:SignedUrlMaxSeconds")]
    [InlineData("Kiln:Queue:LeaseSeconds", "0", "Kiln__Queue__LeaseSeconds")]
    [InlineData("Kiln:Queue:DefaultMaxAttempts", "0", "Kiln__Queue__DefaultMaxAttempts")]
    [InlineData("Kiln:Queue:KeepFailed", "-1", "Kiln__Queue__KeepFailed")]
    [InlineData("Kiln:Workers:Slots:video", "-1", "Kiln:Workers:Slots:video")]
    [InlineData("Kiln:Workers:ShutdownTimeoutSeconds", "-1", "Kiln__Workers__ShutdownTimeoutSeconds")]
    [InlineData("Kiln:DataDirectory", "/proc/kiln-cannot-be-here", "Kiln__DataDirectory")]
    [InlineData("Kiln:Uploads:MaxFiles", "many", "Kiln:Uploads:MaxFiles")]
    public async Task A_bad_setting_fails_the_start_naming_the_key(string key, string value, string named)
    {
        var error = await StartFailureAsync($"--{key}={value}");
        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_malformed_connection_string_names_the_setting()
    {
        var error = await StartFailureAsync("--ConnectionStrings:Kiln=Host=127.0.0.1;Flavour=strawberry");
        Assert.Contains("ConnectionStrings:Kiln", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConnectionStrings__Kiln", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_names_the_setting_and_the_host()
    {
        var error = await StartFailureAsync("--ConnectionStrings:Kiln=Host=127.0.0.1;Port=1;Username=x;Password=y;Database=kiln;Timeout=2");
        Assert.Contains("ConnectionStrings:Kiln", error.Message, StringComparison.Ordinal);
        Assert.Contains("host 127.0.0.1, port 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Good_settings_start()
    {
        await using var app = KilnApp.Build([.. Arguments(), "--Kiln:Uploads:MaxFileBytes=1000", "--Kiln:Workers:Slots:video=0"]);
        await KilnApp.PrepareAsync(app, CancellationToken.None);
        await app.StartAsync();
        await app.StopAsync();
    }

    [Fact]
    public async Task The_built_server_exits_with_the_message_on_standard_error()
    {
        var result = await KilnProcess.RunAsync(
            new Dictionary<string, string>
            {
                ["ConnectionStrings__Kiln"] = _database.ConnectionString,
                ["Kiln__DataDirectory"] = _data,
                ["Kiln__Uploads__MaxFileBytes"] = "-1",
            },
            "serve",
            "--urls",
            "http://127.0.0.1:0");
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("kiln: cannot start with this configuration:", result.Stderr, StringComparison.Ordinal);
        Assert.Contains("  - Kiln:Uploads:MaxFileBytes (env Kiln__Uploads__MaxFileBytes) = -1: ", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
    }

    private async Task<Exception> StartFailureAsync(params string[] settings)
    {
        try
        {
            await using var app = KilnApp.Build([.. Arguments(), .. settings]);
            await KilnApp.PrepareAsync(app, CancellationToken.None);
            await app.StartAsync();
            await app.StopAsync();
        }
        catch (Exception e)
        {
            return e;
        }

        throw new Xunit.Sdk.XunitException("The server started despite " + string.Join(" ", settings));
    }

    private string[] Arguments() =>
    [
        "--urls=http://127.0.0.1:0",
        $"--ConnectionStrings:Kiln={_database.ConnectionString}",
        $"--Kiln:DataDirectory={_data}",
        "--Kiln:Logging:Format=simple",
        "--Logging:LogLevel:Default=None",
        "--Kiln:Security:CreateAdminKeyOnFirstStart=false",
    ];
}
