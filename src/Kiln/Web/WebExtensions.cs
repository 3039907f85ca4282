using System.Net;
using Kiln.Core;
using Microsoft.Extensions.Options;

namespace Kiln.Web;

/// <summary>
/// The dashboard: the page built from <c>web/</c> served from <see cref="WebOptions.Root"/>. Client routes
/// (<c>/jobs/123</c>) fall back to index.html; the API, hub and operations paths never do, so an unknown API
/// route stays a JSON 404 problem. Only page responses get the page's headers; API responses keep theirs.
/// </summary>
internal static class WebExtensions
{
    /// <summary>Paths owned by the server, never answered with the page.</summary>
    private static readonly string[] ServerPrefixes = ["/api", "/hubs", "/health", "/metrics", "/openapi"];

    public static WebApplicationBuilder AddKilnWeb(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebOptions>().BindConfiguration(WebOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        return builder;
    }

    /// <summary>Call after security (CORS, authentication) and before endpoints run; routing has already matched by then.</summary>
    public static WebApplication UseKilnWeb(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<WebOptions>>().Value;
        if (!options.Enabled)
        {
            return app;
        }

        var files = new LazyFileProvider(options.ResolveRoot(app.Environment.ContentRootPath));
        app.Lifetime.ApplicationStopped.Register(files.Dispose);
        app.Use((context, next) =>
        {
            var request = context.Request;
            if (context.GetEndpoint() is null && (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && IsClientRoute(request.Path))
            {
                if (!files.GetFileInfo("/index.html").Exists)
                {
                    return NotBuiltAsync(context, files.Root);
                }

                request.Path = "/index.html";
            }

            return next(context);
        });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            OnPrepareResponse = file => PageHeaders.Apply(file.Context),
        });
        return app;
    }

    /// <summary>A route of the page's own router: not a server path, not a hashed asset, no file extension.</summary>
    internal static bool IsClientRoute(PathString path)
    {
        if (ServerPrefixes.Any(p => path.StartsWithSegments(p, StringComparison.OrdinalIgnoreCase))
            || path.StartsWithSegments("/assets", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var value = path.Value ?? "/";
        var last = value[(value.LastIndexOf('/') + 1)..];
        return !last.Contains('.', StringComparison.Ordinal);
    }

    /// <summary>A page that was never built is a setup step, not a server fault: say which step.</summary>
    private static Task NotBuiltAsync(HttpContext context, string root)
    {
        const string detail = "The dashboard is not built. Run ./kiln.sh run (it builds web/), or build it yourself: cd web && npm ci && npm run build.";
        var wantsHtml = context.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase);
        if (!wantsHtml)
        {
            return Problems.Write(context, StatusCodes.Status404NotFound, "web.not_built", $"{detail} Expected index.html in {root} (Kiln:Web:Root).");
        }

        context.Response.StatusCode = StatusCodes.Status404NotFound;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-cache";
        return context.Response.WriteAsync(
            $"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Kiln</title></head>
            <body><h1>Kiln</h1><p>{WebUtility.HtmlEncode(detail)}</p><p>Expected <code>index.html</code> in <code>{WebUtility.HtmlEncode(root)}</code> (setting <code>Kiln:Web:Root</code>). The API is at <code>/api</code>; its description at <a href="/openapi/v1.json">/openapi/v1.json</a>.</p></body></html>
            """,
            context.RequestAborted);
    }
}

/// <summary>Headers of the page's own files: caching by kind and the page's Content-Security-Policy.</summary>
internal static class PageHeaders
{
    /// <summary>Vite puts a content hash in every file name under assets/, so a name never changes meaning.</summary>
    public const string ImmutableCache = "public, max-age=31536000, immutable";

    public static void Apply(HttpContext context)
    {
        var headers = context.Response.Headers;
        headers.CacheControl = context.Request.Path.StartsWithSegments("/assets", StringComparison.OrdinalIgnoreCase) ? ImmutableCache : "no-cache";
        headers.ContentSecurityPolicy = ContentSecurityPolicy(context.Request.Host);
    }

    /// <summary>
    /// Only what the page needs: its own scripts; inline style attributes (React's style props); images and media
    /// from the server or blob:/data: URLs (previews, hls.js' MediaSource); hls.js' blob worker; the hub's WebSocket.
    /// ws:/wss: of the page's own host are listed because older browsers do not count them as 'self'.
    /// </summary>
    public static string ContentSecurityPolicy(HostString host)
    {
        var sockets = IsPlainHost(host.Value) ? $" ws://{host.Value} wss://{host.Value}" : "";
        return "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            + $"media-src 'self' blob:; connect-src 'self'{sockets}; worker-src 'self' blob:; "
            + "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
    }

    /// <summary>The Host header goes into a response header: accept only host name, IP literal and port characters.</summary>
    private static bool IsPlainHost(string? value) =>
        !string.IsNullOrEmpty(value) && value.Length <= 255
        && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':' or '[' or ']');
}
