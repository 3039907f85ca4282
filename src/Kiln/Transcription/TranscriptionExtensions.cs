using Kiln.Assets;
using Kiln.Jobs;
using Kiln.Processing;
using Kiln.Providers;
using Kiln.Queue;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Kiln.Transcription;

/// <summary>Registers <c>audio.transcribe</c>, its provider, the transcripts store and the completion hook.</summary>
internal static class TranscriptionExtensions
{
    public const string AudioTranscribe = "audio.transcribe";
    public const string Queue = "transcribe";

    public static WebApplicationBuilder AddKilnTranscription(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<TranscriptionOptions>().BindConfiguration(TranscriptionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ProviderGate>();

        // The provider is chosen once, from configuration, so the default pipelines know whether to transcribe.
        var settings = builder.Configuration.GetSection(TranscriptionOptions.Section).Get<TranscriptionOptions>() ?? new TranscriptionOptions();
        var provider = settings.EffectiveProvider;
        switch (provider)
        {
            case "openai":
                services.AddHttpClient<ITranscriptionProvider, OpenAiTranscriptionProvider>(c => c.Timeout = Timeout.InfiniteTimeSpan);
                break;
            case "pocketsphinx":
                services.AddSingleton<ITranscriptionProvider, PocketsphinxProvider>();
                break;
        }

        services.AddJobKind<TranscribeHandler>(new JobKindInfo(AudioTranscribe, Queue, Priority: 5, MediaKinds: Kinds.AudioOrVideo, Params: TranscribeHandler.ReadParams));
        if (provider is "openai" or "pocketsphinx")
        {
            services.AddPipelineStep(new PipelineStep("audio", AudioTranscribe));
            services.AddPipelineStep(new PipelineStep("video", AudioTranscribe));
        }

        services.AddHealthChecks().AddCheck<TranscriptionHealthCheck>("transcription", tags: ["ready"]);
        services.AddSingleton<TranscriptStore>();
        services.AddSingleton<IHlsCaptions, HlsCaptions>();
        services.AddSingleton<IJobCompletionHook, TranscriptCompletionHook>();
        return builder;
    }
}
