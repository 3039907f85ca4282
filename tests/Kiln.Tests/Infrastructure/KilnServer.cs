using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Core;
using Kiln.Hosting;
using Kiln.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Kiln.Tests.Infrastructure;

/// <summary>
/// A real Kiln server for a test: Kestrel on a free loopback port, its own database and data directory, and an
/// admin key. <paramref name="settings"/> override configuration; <paramref name="configure"/> can add services
/// such as test job kinds.
/// </summary>
public sealed class KilnServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TestDatabase? _ownedDatabase;
    private bool _stopped;

    private KilnServer(WebApplication app, TestDatabase? ownedDatabase, string dataDirectory, Uri baseAddress, string adminKey)
    {
        _app = app;
        _ownedDatabase = ownedDatabase;
        DataDirectory = dataDirectory;
        BaseAddress = baseAddress;
        AdminKey = adminKey;
        Admin = CreateClient(adminKey);
    }

    public Uri BaseAddress { get; }

    public string DataDirectory { get; }

    public string AdminKey { get; }

    /// <summary>A client authenticated with the admin key.</summary>
    public HttpClient Admin { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<KilnServer> StartAsync(
        IDictionary<string, string?>? settings = null,
        Action<WebApplicationBuilder>? configure = null,
        TestDatabase? database = null,
        string? dataDirectory = null)
    {
        var owned = database is null ? await TestDatabase.CreateAsync() : null;
        var db = database ?? owned!;
        var data = dataDirectory ?? Directory.CreateTempSubdirectory("kiln-test-data-").FullName;
        var args = new List<string>
        {
            "--urls=http://127.0.0.1:0",
            $"--ConnectionStrings:Kiln={db.ConnectionString}",
            $"--Kiln:DataDirectory={data}",
            "--Kiln:Logging:Format=simple",
            "--Logging:LogLevel:Default=Warning",
            "--Kiln:Security:CreateAdminKeyOnFirstStart=false",
            "--Kiln:Security:PerKeyRequestsPerSecond=0",
            "--Kiln:Security:GlobalRequestsPerSecond=0",
            "--Kiln:Queue:IdlePollSeconds=2",
            "--Kiln:Queue:MaintenanceIntervalSeconds=0.2",
            "--Kiln:Workers:ShutdownTimeoutSeconds=5",
            // Local transcription is minutes of CPU on a loaded machine; the tests that want it turn it on.
            "--Kiln:Transcription:Provider=none",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            args.Add($"--{key}={value}");
        }

        var app = KilnApp.Build([.. args], configure);
        await KilnApp.PrepareAsync(app, CancellationToken.None);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var keys = app.Services.GetRequiredService<ApiKeyStore>();
        var admin = await keys.CreateAsync("test admin", Roles.Admin, CancellationToken.None);
        return new KilnServer(app, owned, data, new Uri(address), admin.Secret);
    }

    public HttpClient CreateClient(string? apiKey = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        if (apiKey is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return client;
    }

    /// <summary>Creates a client key and a client using it.</summary>
    public async Task<(HttpClient Client, Guid KeyId)> CreateClientKeyAsync(string name = "client")
    {
        var created = await Services.GetRequiredService<ApiKeyStore>().CreateAsync(name, Roles.Client, CancellationToken.None);
        return (CreateClient(created.Secret), created.Info.Id);
    }

    public T Get<T>()
        where T : notnull => Services.GetRequiredService<T>();

    /// <summary>Polls a job until it reaches one of the states, or fails the test after the timeout.</summary>
    public async Task<JsonObject> WaitForJobAsync(Guid jobId, string[] states, TimeSpan? timeout = null, HttpClient? client = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        JsonObject? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await (client ?? Admin).GetFromJsonAsync<JsonObject>($"/api/jobs/{jobId}");
            if (states.Contains(last!["state"]!.GetValue<string>()))
            {
                return last;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"Job {jobId} did not reach {string.Join("/", states)}; last: {last?.ToJsonString()}");
    }

    /// <summary>Uploads files (path, or name and bytes) and returns the response body.</summary>
    public async Task<JsonObject> UploadAsync(IEnumerable<(string Name, byte[] Bytes)> files, JsonObject? settings = null, HttpClient? client = null, string? category = null)
    {
        using var form = new MultipartFormDataContent();
        foreach (var (name, bytes) in files)
        {
            form.Add(new ByteArrayContent(bytes), "file", name);
        }

        if (settings is not null)
        {
            form.Add(new StringContent(settings.ToJsonString()), "settings");
        }

        if (category is not null)
        {
            form.Add(new StringContent(category), "category");
        }

        using var response = await (client ?? Admin).PostAsync("/api/uploads", form);
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"Upload failed: {(int)response.StatusCode} {body}");
        }

        return JsonNode.Parse(body)!.AsObject();
    }

    /// <summary>Stops the server gracefully (as on SIGTERM) without deleting its database or data.</summary>
    public async Task StopAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            await _app.StopAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        await StopAsync();
        await _app.DisposeAsync();
        if (_ownedDatabase is not null)
        {
            await _ownedDatabase.DisposeAsync();
            try
            {
                Directory.Delete(DataDirectory, recursive: true);
            }
            catch (IOException)
            {
                // A file still open by a finishing process; the temp directory is cleaned by the OS later.
            }
        }
    }

    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web);
}
