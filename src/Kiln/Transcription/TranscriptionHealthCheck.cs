using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Kiln.Transcription;

/// <summary>
/// Reports the configured transcription provider on <c>/health/ready</c>: pocketsphinx must be on disk; a remote one is
/// reported by host and model only (calling it would cost money), and whether a key is set, never the key.
/// </summary>
internal sealed class TranscriptionHealthCheck(IOptions<TranscriptionOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        var data = new Dictionary<string, object> { ["provider"] = o.EffectiveProvider };
        switch (o.EffectiveProvider)
        {
            case "pocketsphinx":
                var path = Which(o.PocketsphinxPath);
                data["executable"] = path ?? "missing";
                return Task.FromResult(path is null
                    ? HealthCheckResult.Degraded($"{o.PocketsphinxPath} was not found; audio.transcribe jobs will fail.", data: data)
                    : HealthCheckResult.Healthy("pocketsphinx found", data));
            case "openai":
                data["host"] = new Uri(o.OpenAi.EffectiveBaseUrl).Host;
                data["model"] = o.OpenAi.Model;
                data["keySet"] = !string.IsNullOrWhiteSpace(o.OpenAi.ApiKey);
                return Task.FromResult(HealthCheckResult.Healthy("OpenAI-compatible transcription configured", data));
            default:
                return Task.FromResult(HealthCheckResult.Healthy("transcription disabled", data));
        }
    }

    private static string? Which(string name)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(name) ? name : null;
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }
}
