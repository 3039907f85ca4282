using Kiln.Core;
using System.ComponentModel.DataAnnotations;
using System.IO.Compression;
using Microsoft.AspNetCore.ResponseCompression;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Kiln.Hosting;

/// <summary>Section <c>Kiln:Http</c>.</summary>
internal sealed class HttpOptions
{
    public const string Section = "Kiln:Http";

    /// <summary>Compress JSON, the web page (HTML, JS, CSS) and /metrics with Brotli or gzip. Kiln__Http__Compression.</summary>
    public bool Compression { get; set; } = true;

    /// <summary>Fastest (default) or Optimal: on a small box CPU is scarcer than bandwidth. Kiln__Http__CompressionLevel.</summary>
    [AllowedValues(CompressionLevel.Fastest, CompressionLevel.Optimal, CompressionLevel.SmallestSize)]
    public CompressionLevel CompressionLevel { get; set; } = CompressionLevel.Fastest;
}

/// <summary>
/// Response compression for text Kiln writes itself. Media is never compressed: its formats are compressed already,
/// and a download that offers byte ranges (<c>Accept-Ranges</c>, or is a range: <c>Content-Range</c>) must send the
/// stored bytes, or range offsets and the ETag would describe something else.
/// </summary>
internal static class HttpCompression
{
    private static readonly string[] TextTypes =
    [
        "application/json", "application/problem+json", "text/html", "text/css", "text/javascript", "application/javascript",
        "image/svg+xml", "text/plain", "application/openmetrics-text",
    ];

    public static WebApplicationBuilder AddKilnCompression(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<HttpOptions>().BindConfiguration(HttpOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddResponseCompression(o =>
        {
            // Compression over TLS and BREACH: Kiln's responses do not echo request input next to a secret.
            o.EnableForHttps = true;
            o.MimeTypes = TextTypes;
            o.Providers.Add<BrotliCompressionProvider>();
            o.Providers.Add<GzipCompressionProvider>();
        });
        builder.Services.AddOptions<BrotliCompressionProviderOptions>().Configure<IOptions<HttpOptions>>((o, http) => o.Level = http.Value.CompressionLevel);
        builder.Services.AddOptions<GzipCompressionProviderOptions>().Configure<IOptions<HttpOptions>>((o, http) => o.Level = http.Value.CompressionLevel);
        builder.Services.AddSingleton<IResponseCompressionProvider, NoRangesCompressionProvider>();
        return builder;
    }

    public static WebApplication UseKilnCompression(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<HttpOptions>>().Value.Compression)
        {
            app.UseResponseCompression();
        }

        return app;
    }

    private sealed class NoRangesCompressionProvider(IServiceProvider services, IOptions<ResponseCompressionOptions> options)
        : ResponseCompressionProvider(services, options)
    {
        public override bool ShouldCompressResponse(HttpContext context) =>
            !context.Response.Headers.ContainsKey(HeaderNames.AcceptRanges)
            && !context.Response.Headers.ContainsKey(HeaderNames.ContentRange)
            && base.ShouldCompressResponse(context);
    }
}
