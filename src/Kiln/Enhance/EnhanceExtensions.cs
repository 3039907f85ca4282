using Kiln.Providers;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Kiln.Enhance;

/// <summary>Registers the remote enhancer <c>Kiln:Enhance:Provider</c> names; with <c>local</c> nothing changes.</summary>
internal static class EnhanceExtensions
{
    public static WebApplicationBuilder AddKilnEnhanceProviders(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<EnhanceProviderOptions>().BindConfiguration(EnhanceProviderOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ProviderGate>();
        services.AddHealthChecks().AddCheck<EnhanceHealthCheck>("enhance", tags: ["ready"]);
        var provider = (builder.Configuration.GetSection(EnhanceProviderOptions.Section).Get<EnhanceProviderOptions>() ?? new EnhanceProviderOptions()).EffectiveProvider;
        if (provider is not ("gemini" or "openai"))
        {
            return builder;
        }

        services.AddHttpClient("kiln-enhance", c => c.Timeout = Timeout.InfiniteTimeSpan);
        services.AddSingleton<IRemoteEnhancer>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<EnhanceProviderOptions>>().Value;
            var http = sp.GetRequiredService<IHttpClientFactory>().CreateClient("kiln-enhance");
            var gate = sp.GetRequiredService<ProviderGate>();
            var time = sp.GetRequiredService<TimeProvider>();
            return provider == "gemini" ? new GeminiEnhancer(http, o.Gemini, gate, time) : new OpenAiImageEnhancer(http, o.OpenAi, gate, time);
        });
        services.AddSingleton(sp => new RemoteEnhanceRunner(
            sp.GetRequiredService<IRemoteEnhancer>(), sp.GetRequiredService<IOptions<EnhanceProviderOptions>>().Value));
        return builder;
    }
}

/// <summary>Reports the enhance provider, host, model and whether a key is set (never the key) on <c>/health/ready</c>.</summary>
internal sealed class EnhanceHealthCheck(IOptions<EnhanceProviderOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        var data = new Dictionary<string, object> { ["provider"] = o.EffectiveProvider };
        if (o.Remote is { } r)
        {
            data["host"] = new Uri(r.BaseUrl).Host;
            data["model"] = r.Model;
            data["keySet"] = !string.IsNullOrWhiteSpace(r.ApiKey);
        }

        return Task.FromResult(o.Remote is { ApiKey: null or "" } && o.EffectiveProvider == "gemini"
            ? HealthCheckResult.Degraded("Gemini enhancement has no API key (Kiln:Enhance:Gemini:ApiKey).", data: data)
            : HealthCheckResult.Healthy($"enhance provider {o.EffectiveProvider}", data));
    }
}
