namespace Kiln.Core;

/// <summary>
/// How a one-shot command (keys, worker tokens, backup, restore, cleanup, health) or <c>kiln worker</c> gets the
/// server's services. The composition root (Hosting) implements it and Program.cs hands it to each command, so a
/// feature's command never reaches into the composition root: dependencies point one way.
/// </summary>
internal interface IKilnComposition
{
    /// <summary>The whole server, unprepared (no migrations run yet); <paramref name="configure"/> adds settings or services.</summary>
    WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null);

    /// <summary>Checks settings and migrates the database, as <c>kiln serve</c> does before it serves.</summary>
    Task PrepareAsync(WebApplication app, CancellationToken cancellationToken);

    /// <summary>Registers every job kind and its handler: what a remote worker can run.</summary>
    void AddJobKinds(WebApplicationBuilder builder);
}

internal static class KilnCompositionExtensions
{
    /// <summary>Builds and prepares the server's services for a command; the caller disposes them.</summary>
    public static async Task<WebApplication> OpenAsync(this IKilnComposition composition, string[] args, CancellationToken cancellationToken)
    {
        var app = composition.Build(args);
        try
        {
            await composition.PrepareAsync(app, cancellationToken);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }
}
