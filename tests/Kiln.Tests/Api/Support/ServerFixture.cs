using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Api.Support;

/// <summary>One server with the test job kinds shared by the tests of a class; tests work on their own uploads.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public KilnServer Server { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Server = await TestJobs.StartServerAsync();

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}
