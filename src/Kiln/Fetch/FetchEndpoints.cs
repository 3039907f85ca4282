using System.Net;
using System.Security.Claims;
using System.Text.Json.Nodes;
using Kiln.Assets;
using Kiln.Core;
using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Security;
using Kiln.Storage;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Kiln.Fetch;

/// <summary>Body of <c>POST /api/downloads</c>; <c>settings</c> is the same object as for uploads.</summary>
internal sealed record DownloadRequest(string? Url, JsonObject? Settings, string? Category, List<string>? Tags, string? Mode);

internal sealed record DownloadAccepted(Guid AssetId, Guid JobId);

/// <summary>A fetch job with the download's own fields; the URL shown is the redacted one.</summary>
internal sealed record DownloadView(Job Job, string? SourceUrl, string? Mode);

/// <summary>What creating a download needs, injected as one parameter.</summary>
internal sealed record DownloadServices(NpgsqlDataSource DataSource, JobStore Jobs, PipelinePlanner Planner, JobKindCatalog Catalog, IOptions<FetchOptions> Options, IOptions<RetentionOptions> Retention, TimeProvider Time, AddressGuard Guard);

internal static class FetchEndpoints
{
    public const string Queue = "fetch";

    public static WebApplicationBuilder AddKilnFetch(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<FetchOptions>().BindConfiguration(FetchOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<AddressGuard>();
        builder.Services.AddSingleton<DirectDownloader>();
        builder.Services.AddSingleton<FetchProxy>();
        builder.Services.AddSingleton<YtDlpDownloader>();
        builder.Services.AddSingleton<Aria2Downloader>();
        builder.Services.AddSingleton<FetchModeChooser>();
        builder.Services.AddHttpClient(DirectDownloader.ClientName, c => c.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(CreateHandler);
        builder.Services.AddSingleton<FetchSweeper>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<FetchSweeper>());
        builder.Services.AddJobKind<FetchHandler>(new JobKindInfo(Kinds.Fetch, Queue, Priority: 5, Pausable: true));

        // Served by in-process workers unless Kiln:Workers:Slots:fetch says otherwise.
        builder.Services.PostConfigure<WorkerOptions>(o => o.Slots.TryAdd(Queue, 2));
        return builder;
    }

    /// <summary>The fetch client's handler: guarded connections, no proxy, cookies or decompression, bounded redirects.</summary>
    public static SocketsHttpHandler CreateHandler(IServiceProvider services)
    {
        var o = services.GetRequiredService<IOptions<FetchOptions>>().Value;
        return new SocketsHttpHandler
        {
            // Every connection, redirects included, is opened by the guard on an address it checked.
            ConnectCallback = services.GetRequiredService<AddressGuard>().ConnectCallback,
            ConnectTimeout = TimeSpan.FromSeconds(o.ConnectTimeoutSeconds),
            AllowAutoRedirect = o.MaxRedirects > 0,
            MaxAutomaticRedirections = Math.Max(1, o.MaxRedirects),
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        };
    }

    public static RouteGroupBuilder MapDownloads(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/downloads").WithTags("Downloads").ProducesCommonProblems().RequireAuthorization(SecurityExtensions.ClientPolicy);
        group.MapPost("/", Create);
        group.MapGet("/{jobId:guid}", Get);
        return group;
    }

    /// <summary><c>POST /api/downloads</c>: creates the asset (source url) and its fetch job; the pipeline follows the bytes.</summary>
    private static async Task<Results<Accepted<DownloadAccepted>, ProblemHttpResult>> Create(
        DownloadRequest request, ClaimsPrincipal user, [AsParameters] DownloadServices services, CancellationToken ct)
    {
        if (FetchUrl.Parse(request.Url, out var urlError) is not { } url)
        {
            return Problems.BadRequest("fetch.bad_url", urlError!);
        }

        // Literal addresses are refused here already; names are checked again on every connection.
        try
        {
            services.Guard.CheckHost(url.IdnHost);
        }
        catch (FetchForbiddenException e)
        {
            return Problems.BadRequest(e.Code, e.Message);
        }

        if (IPAddress.TryParse(url.IdnHost.Trim('[', ']'), out var literal) && AddressGuard.Refusal(literal, services.Options.Value) is { } reason)
        {
            return Problems.BadRequest("fetch.forbidden_address", $"{literal} is a {reason} address; fetching from it is not allowed.");
        }

        var mode = request.Mode ?? services.Options.Value.Mode;
        if (mode is not ("auto" or "direct" or "ytdlp"))
        {
            return Problems.BadRequest("fetch.bad_mode", "mode must be auto, direct or ytdlp.");
        }

        if (services.Planner.Validate(request.Settings) is { } settingsError)
        {
            return Problems.BadRequest(settingsError.Code("fetch"), settingsError.Message);
        }

        string? category;
        List<string> tags;
        try
        {
            category = request.Category is null ? null : FileNames.ValidateToken(request.Category, "category");
            tags = (request.Tags ?? []).Select(t => FileNames.ValidateToken(t, "tags")).ToList();
        }
        catch (UploadRejectedException e)
        {
            return Problems.BadRequest(e.Code.Replace("upload.", "fetch.", StringComparison.Ordinal), e.Message);
        }

        var ttl = services.Retention.Value.AssetTtlHours;
        var assetId = Guid.CreateVersion7();
        var owner = user.KeyId();
        var asset = new Asset
        {
            Id = assetId,
            OwnerId = owner,
            Kind = "other",
            ContentType = "application/octet-stream",
            OriginalName = FileNames.Sanitize(FetchUrl.FileName(url)),
            Size = 0,
            Path = BlobStore.OriginalRelativePath(assetId),
            Category = category,
            Tags = tags,
            Source = "url",
            SourceUrl = FetchUrl.Redact(url),
            ExpiresAt = ttl > 0 ? services.Time.GetUtcNow().AddHours(ttl) : null,
        };
        var info = services.Catalog.Get(Kinds.Fetch);
        var job = new NewJob
        {
            Kind = Kinds.Fetch,
            Queue = info.Queue,
            AssetId = assetId,
            OwnerId = owner,
            Priority = request.Settings?["priority"] is { } p ? (int)p.GetValue<double>() : info.Priority,
            MaxAttempts = info.MaxAttempts ?? services.Jobs.DefaultMaxAttempts,

            // The full URL (secrets in its query included, user info never) is needed to resume after a restart.
            Params = new JsonObject
            {
                ["url"] = FetchUrl.WithoutUserInfo(url).AbsoluteUri,
                ["mode"] = mode,
                ["settings"] = request.Settings?.DeepClone(),
            },
        };

        await using var conn = await services.DataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await AssetStore.InsertAsync(conn, tx, asset, ct);
        var enqueued = await services.Jobs.EnqueueAsync([job], conn, tx, ct);
        await tx.CommitAsync(ct);
        services.Jobs.Announce(enqueued);
        return TypedResults.Accepted($"/api/downloads/{job.Id}", new DownloadAccepted(assetId, job.Id));
    }

    /// <summary><c>GET /api/downloads/{jobId}</c>: the fetch job (commands are the job commands under /api/jobs).</summary>
    private static async Task<Results<Ok<DownloadView>, ProblemHttpResult>> Get(
        Guid jobId, ClaimsPrincipal user, JobStore jobs, AssetStore assets, CancellationToken ct)
    {
        if (await jobs.GetAsync(jobId, user.OwnerScope(), ct) is not { Kind: Kinds.Fetch } job)
        {
            return Problems.NotFound("Download");
        }

        var asset = job.AssetId is { } id ? await assets.GetAsync(id, user.OwnerScope(), ct) : null;
        var parameters = job.Params?.DeepClone().AsObject();
        parameters?.Remove("url");
        return TypedResults.Ok(new DownloadView(job with { Params = parameters }, asset?.SourceUrl, job.Params?["mode"]?.GetValue<string>()));
    }
}
