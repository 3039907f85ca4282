using Kiln.Processing;
using Kiln.Providers;
using Kiln.Tests.Queue;
using Kiln.Transcription;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Transcription;

/// <summary>The OpenAI-compatible provider against a local server speaking the /v1/audio/transcriptions wire format.</summary>
public sealed class OpenAiTranscriptionProviderTests : IAsyncLifetime
{
    /// <summary>A verbose_json answer as OpenAI's whisper-1 returns it (fields trimmed of token ids only).</summary>
    public const string VerboseJson = """
        {"task":"transcribe","language":"english","duration":5.24,"text":" The quick brown fox jumps over the lazy dog. Please call me tomorrow morning.",
         "segments":[
          {"id":0,"seek":0,"start":0.0,"end":3.28,"text":" The quick brown fox jumps over the lazy dog.","tokens":[50364,440],"temperature":0.0,"avg_logprob":-0.21,"compression_ratio":1.07,"no_speech_prob":0.006},
          {"id":1,"seek":0,"start":3.28,"end":5.2,"text":" Please call me tomorrow morning.","tokens":[50528,2555],"temperature":0.0,"avg_logprob":-0.21,"compression_ratio":1.07,"no_speech_prob":0.006}]}
        """;

    private FakeAiServer _fake = null!;
    private string _wav = null!;

    public async ValueTask InitializeAsync()
    {
        _fake = await FakeAiServer.StartAsync();
        _wav = Path.Combine(Directory.CreateTempSubdirectory("kiln-oa-").FullName, "speech-0000.wav");
        await File.WriteAllBytesAsync(_wav, new byte[44 + 32000]);
    }

    public async ValueTask DisposeAsync()
    {
        await _fake.DisposeAsync();
        Directory.Delete(Path.GetDirectoryName(_wav)!, recursive: true);
    }

    private OpenAiTranscriptionProvider Provider(int attempts = 3, double maxRetryAfter = 30, TimeProvider? time = null, ProviderGate? gate = null) => new(
        new HttpClient(),
        Options.Create(new TranscriptionOptions
        {
            OpenAi = new OpenAiTranscriptionOptions
            {
                BaseUrl = _fake.BaseUrl + "/v1",
                ApiKey = "sk-test-secret",
                Model = "whisper-large-v3",
                MaxAttempts = attempts,
                BackoffSeconds = 0.01,
                MaxRetryAfterSeconds = maxRetryAfter,
            },
        }),
        gate ?? new ProviderGate(time ?? TimeProvider.System),
        time ?? TimeProvider.System);

    [Fact]
    public async Task Sends_the_multipart_form_openai_expects_and_reads_verbose_json_segments()
    {
        _fake.Enqueue(new ScriptedReply(200, VerboseJson));
        var result = await Provider().TranscribeAsync(_wav, "EN", TestContext.Current.CancellationToken);

        var r = Assert.Single(_fake.Received);
        Assert.Equal("/v1/audio/transcriptions", r.Path);
        Assert.Equal("Bearer sk-test-secret", r.Authorization);
        Assert.StartsWith("multipart/form-data", r.ContentType, StringComparison.Ordinal);
        Assert.Equal("whisper-large-v3", r.Fields["model"]);
        Assert.Equal("verbose_json", r.Fields["response_format"]);
        Assert.Equal("en", r.Fields["language"]);
        Assert.Equal("audio/wav", r.Fields["@file"]);
        Assert.Equal("speech-0000.wav", r.FileName);
        Assert.Equal(44 + 32000, r.FileBytes);

        Assert.Equal("english", result.Language);
        Assert.Equal("The quick brown fox jumps over the lazy dog. Please call me tomorrow morning.", result.Text);
        Assert.Equal(2, result.Segments.Count);
        Assert.Equal((3.28, 5.2, "Please call me tomorrow morning."), (result.Segments[1].Start, result.Segments[1].End, result.Segments[1].Text));
    }

    [Fact]
    public async Task A_429_waits_for_retry_after_and_a_500_is_retried()
    {
        _fake.Enqueue(
            new ScriptedReply(429, """{"error":{"message":"Rate limit reached for whisper-1","type":"requests","code":"rate_limit_exceeded"}}""", new() { ["Retry-After"] = "1" }),
            new ScriptedReply(500, """{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"""),
            new ScriptedReply(200, VerboseJson));
        var result = await Provider(attempts: 3).TranscribeAsync(_wav, null, TestContext.Current.CancellationToken);
        Assert.Equal(2, result.Segments.Count);
        var times = _fake.Received.Select(r => r.At).ToArray();
        Assert.Equal(3, times.Length);
        // A lower bound only: the second attempt came no sooner than the Retry-After asked.
        Assert.True(times[1] - times[0] >= TimeSpan.FromSeconds(0.9), $"retried after {(times[1] - times[0]).TotalSeconds} s");
    }

    [Fact]
    public async Task A_429_holds_back_every_request_to_the_provider_until_its_retry_after_has_passed()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var gate = new ProviderGate(time);
        _fake.Enqueue(
            new ScriptedReply(429, """{"error":{"message":"Rate limit reached for whisper-1","code":"rate_limit_exceeded"}}""", new() { ["Retry-After"] = "30" }),
            new ScriptedReply(200, VerboseJson),
            new ScriptedReply(200, VerboseJson));

        // The first job's request is answered 429 "retry after 30 s".
        var first = Provider(time: time, gate: gate).TranscribeAsync(_wav, null, ct);
        await Poll.UntilAsync(() => Task.FromResult(gate.Remaining("OpenAI transcription") == TimeSpan.FromSeconds(30)), "the 429 to close the gate");
        // A second job of the queue, started meanwhile, does not send at all until the 30 s are over.
        var second = Provider(time: time, gate: gate).TranscribeAsync(_wav, null, ct);
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Single(_fake.Received);
        Assert.False(second.IsCompleted);
        Assert.False(first.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, (await first).Segments.Count);
        Assert.Equal(2, (await second).Segments.Count);
        Assert.Equal(3, _fake.Received.Count);
        Assert.Equal(TimeSpan.Zero, gate.Remaining("OpenAI transcription"));
    }

    [Fact]
    public async Task Other_4xx_fail_at_once_with_the_providers_message_and_without_the_key()
    {
        _fake.Enqueue(new ScriptedReply(400, """{"error":{"message":"Invalid file format. Supported formats: ['flac', 'm4a', 'mp3', 'wav']","type":"invalid_request_error","param":null,"code":null}}"""));
        var e = await Assert.ThrowsAsync<JobFailedException>(() => Provider().TranscribeAsync(_wav, null, TestContext.Current.CancellationToken));
        Assert.Equal("provider.rejected", e.ErrorCode);
        Assert.False(e.Retryable);
        Assert.Contains("Invalid file format", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-test-secret", e.Message, StringComparison.Ordinal);
        Assert.Single(_fake.Received);
    }

    [Fact]
    public async Task Persistent_5xx_and_429_end_retryable_and_a_malformed_body_fails_clearly()
    {
        _fake.Enqueue(new ScriptedReply(503, "upstream connect error"), new ScriptedReply(502, "bad gateway"));
        var unavailable = await Assert.ThrowsAsync<JobFailedException>(() => Provider(attempts: 2).TranscribeAsync(_wav, null, TestContext.Current.CancellationToken));
        Assert.Equal(("provider.unavailable", true), (unavailable.ErrorCode, unavailable.Retryable));
        Assert.Contains("bad gateway", unavailable.Message, StringComparison.Ordinal);

        _fake.Enqueue(new ScriptedReply(429, "{}", new() { ["Retry-After"] = "0" }), new ScriptedReply(429, "{}", new() { ["Retry-After"] = "0" }));
        var limited = await Assert.ThrowsAsync<JobFailedException>(() => Provider(attempts: 2).TranscribeAsync(_wav, null, TestContext.Current.CancellationToken));
        Assert.Equal(("provider.rate_limited", true), (limited.ErrorCode, limited.Retryable));

        _fake.Enqueue(new ScriptedReply(200, """{"task":"transcribe","segments":[{"start":"x"}"""));
        var bad = await Assert.ThrowsAsync<JobFailedException>(() => Provider().TranscribeAsync(_wav, null, TestContext.Current.CancellationToken));
        Assert.Equal("provider.bad_response", bad.ErrorCode);
        Assert.Equal(5, _fake.Received.Count);
    }
}
