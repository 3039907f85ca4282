using System.Globalization;
using System.Threading.RateLimiting;
using Kiln.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Kiln.Security;

internal static class SecurityExtensions
{
    public const string AdminPolicy = "admin";
    public const string ClientPolicy = "client";
    public const string WorkerPolicy = "worker";
    private const string CorsPolicy = "kiln";

    public static WebApplicationBuilder AddKilnSecurity(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<SecurityOptions>().BindConfiguration(SecurityOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddMemoryCache();
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddHostedService<AdminKeyBootstrap>();
        builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AdminPolicy, p => p.RequireRole(Roles.Admin))
            .AddPolicy(ClientPolicy, p => p.RequireRole(Roles.Admin, Roles.Client))
            .AddPolicy(WorkerPolicy, p => p.RequireRole(Roles.Worker));

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
            o.OnRejected = async (context, ct) =>
            {
                if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
                {
                    context.HttpContext.Response.Headers.RetryAfter = ((int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
                }

                await Problems.Write(context.HttpContext, StatusCodes.Status429TooManyRequests, "rate_limited", "Too many requests; slow down and retry later.");
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
                // Partition by the presented key (authentication runs after the limiter only for rejected calls, so
                // the raw header is the stable partition key); anonymous callers by address.
                var key = context.Request.Headers.Authorization.ToString();
                if (string.IsNullOrEmpty(key))
                {
                    key = "ip:" + context.Connection.RemoteIpAddress;
                }

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
