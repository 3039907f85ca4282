using Kiln.Core;

namespace Kiln.Hosting;

/// <summary>The composition root as the commands see it (<see cref="IKilnComposition"/>); Program.cs hands it out.</summary>
internal sealed class KilnComposition : IKilnComposition
{
    public static readonly KilnComposition Instance = new();

    public WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null) => KilnApp.Build(args, configure);

    public Task PrepareAsync(WebApplication app, CancellationToken cancellationToken) => KilnApp.PrepareAsync(app, cancellationToken);

    public void AddJobKinds(WebApplicationBuilder builder) => builder.AddKilnJobKinds();
}
