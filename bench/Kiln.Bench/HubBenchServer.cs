using Kiln.Core;
using Kiln.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Kiln.Security;

namespace Kiln.Bench;

/// <summary>
/// <c>serve</c>: the server half of the hub and remote-worker benchmarks — KilnApp.Build in its own process, so the
/// parent can read the server's memory apart from its clients'. Prints <c>KILN-BENCH-READY {adminKey}</c> once
/// it serves, and runs until SIGTERM. Arguments are the server's configuration (<c>--Section:Key=value</c>).
/// </summary>
internal sealed class HubBenchServer : IBenchmark
{
    public string Name => "serve";

    public string Description => "(used by hub-latency and remote-worker-throughput) a Kiln server in its own process";

    public async Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        await using var app = KilnApp.Build(args);
        await KilnApp.PrepareAsync(app, cancellationToken);
        await app.StartAsync(cancellationToken);
        var admin = await app.Services.GetRequiredService<ApiKeyStore>().CreateAsync("bench admin", Roles.Admin, cancellationToken);
        Console.WriteLine(HubBench.ReadyLine + admin.Secret);
        await app.WaitForShutdownAsync(CancellationToken.None);
        return 0;
    }
}
