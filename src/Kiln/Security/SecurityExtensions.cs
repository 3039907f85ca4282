using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;
using Kiln.Core;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Kiln.Security;

internal static class SecurityExtensions
{
    public const string AdminPolicy = "admin";
    public const string ClientPolicy = "client";
    public const string WorkerPolicy = "worker";

    /// <summary>Reading a file's bytes: an API key, or a signed URL for that file.</summary>
    public const string FileReadPolicy = "file-read";
    private const string CorsPolicy = "kiln";

    /// <summary>
    /// Lets browsers on other origins read these response headers (CORS <c>Access-Control-Expose-Headers</c>): a
    /// feature with headers of its own (tus) adds them here rather than Security knowing every feature's headers.
    /// </summary>
    public static IServiceCollection AddCorsExposedHeaders(this IServiceCollection services, params string[] headers) =>
        services.PostConfigure<CorsOptions>(o =>
        {
            var policy = o.GetPolicy(CorsPolicy) ?? throw new InvalidOperationException("AddKilnSecurity must run first.");
            foreach (var header in headers.Where(h => !policy.ExposedHeaders.Contains(h, StringComparer.OrdinalIgnoreCase)))
            {
                policy.ExposedHeaders.Add(header);
            }
        });

    public static WebApplicationBuilder AddKilnSecurity(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SecurityOptions>().BindConfiguration(SecurityOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddMemoryCache();
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<UrlSigner>();
        builder.Services.AddHostedService<AdminKeyBootstrap>();
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AdminPolicy, p => p.RequireRole(Roles.Admin))
            .AddPolicy(ClientPolicy, p => p.RequireRole(Roles.Admin, Roles.Client))
            .AddPolicy(WorkerPolicy, p => p.RequireRole(Roles.Worker))
            .AddPolicy(FileReadPolicy, p => p.RequireRole(Roles.Admin, Roles.Client, Roles.SignedUrl));

        var security = builder.Configuration.GetSection(SecurityOptions.Section).Get<SecurityOptions>() ?? new SecurityOptions();
        builder.Services.AddCors(o => o.AddPolicy(CorsPolicy, p =>
        {
            if (security.CorsOrigins.Contains("*"))
            {
                p.AllowAnyOrigin();
            }
            else
            {
                p.WithOrigins(security.CorsOrigins).AllowCredentials();
            }

            p.AllowAnyHeader().AllowAnyMethod().WithExposedHeaders("Content-Range", "Accept-Ranges", "ETag", "Content-Disposition");
        }));

        builder.Services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = BuildLimiter(security);
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = async (context, ct) =>
            {
                // Token buckets replenish every second, so a second is the honest answer when the lease has none.
                var seconds = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)) : 1;
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await Problems.Write(context.HttpContext, StatusCodes.Status429TooManyRequests, "rate_limited", $"Too many requests; retry after {seconds} s.");
            };
        });
        return builder;
    }

    public static WebApplication UseKilnSecurity(this WebApplication app)
    {
        var security = app.Services.GetRequiredService<IOptions<SecurityOptions>>().Value;
        app.Use((context, next) =>
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers["Referrer-Policy"] = "no-referrer";
            headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = security.MaxRequestBodyBytes;
            }

            return next(context);
        });
        app.UseCors(CorsPolicy);
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();
        return app;
    }

    private static PartitionedRateLimiter<HttpContext> BuildLimiter(SecurityOptions security)
    {
        var limiters = new List<PartitionedRateLimiter<HttpContext>>();
        if (security.GlobalRequestsPerSecond > 0)
        {
            limiters.Add(PartitionedRateLimiter.Create<HttpContext, string>(_ => RateLimitPartition.GetTokenBucketLimiter("global", _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = security.GlobalRequestsPerSecond,
                TokensPerPeriod = security.GlobalRequestsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
            })));
        }

        if (security.PerKeyRequestsPerSecond > 0)
        {
            limiters.Add(PartitionedRateLimiter.Create<HttpContext, string>(context =>
            {
                // Authentication has run: a known key is its own partition; anonymous callers, signed URLs and
                // unknown keys share their address's, so inventing keys buys no extra requests.
                var keyId = context.User.FindFirstValue(ClaimTypes.NameIdentifier);
                var key = keyId is not null ? "key:" + keyId : "ip:" + context.Connection.RemoteIpAddress;
                return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = security.PerKeyBurst,
                    TokensPerPeriod = security.PerKeyRequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                });
            }));
        }

        return limiters.Count == 0
            ? PartitionedRateLimiter.Create<HttpContext, string>(_ => RateLimitPartition.GetNoLimiter("none"))
            : PartitionedRateLimiter.CreateChained([.. limiters]);
    }
}
