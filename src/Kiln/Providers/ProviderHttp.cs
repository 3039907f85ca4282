using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Kiln.Processing;

namespace Kiln.Providers;

/// <summary>Retry and timeout rules shared by every remote AI provider (transcription and enhancement).</summary>
internal sealed record ProviderRetry(TimeSpan Timeout, int MaxAttempts, TimeSpan MaxRetryAfter, TimeSpan BaseBackoff);

/// <summary>
/// Sends one provider request with the house rules: a timeout per attempt; 429 waits for <c>Retry-After</c> (capped)
/// and tries again, holding back every other request to the same provider meanwhile (<see cref="ProviderGate"/>); 5xx, timeouts and connection failures back off exponentially and try again; any other 4xx fails
/// at once with <c>provider.rejected</c> and the provider's own message. Keys travel only in the request headers
/// the caller builds and never appear in messages, which quote only the provider's response.
/// </summary>
internal static class ProviderHttp
{
    private const int MaxMessageChars = 500;

    public static async Task<string> SendAsync(
        HttpClient http, Func<HttpRequestMessage> build, ProviderRetry retry, string provider, ProviderGate gate, TimeProvider time, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            // Wait out a 429 this provider gave any request of this process (ProviderGate).
            await gate.WaitAsync(provider, ct);
            var last = attempt >= retry.MaxAttempts;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(retry.Timeout);
            TimeSpan wait;
            try
            {
                using var request = build();
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token);
                var body = await response.Content.ReadAsStringAsync(timeout.Token);
                if (response.IsSuccessStatusCode)
                {
                    return body;
                }

                var status = (int)response.StatusCode;
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    if (last)
                    {
                        throw new JobFailedException("provider.rate_limited", $"{provider} kept answering 429: {MessageOf(body)}", retryable: true);
                    }

                    // The hold applies to every request to this provider; this one waits it out at the loop's top.
                    gate.Close(provider, RetryAfter(response, time) is { } ra ? Min(ra, retry.MaxRetryAfter) : Backoff(retry, attempt));
                    continue;
                }
                else if (status >= 500)
                {
                    if (last)
                    {
                        throw new JobFailedException("provider.unavailable", $"{provider} answered {status}: {MessageOf(body)}", retryable: true);
                    }

                    wait = Backoff(retry, attempt);
                }
                else
                {
                    throw new JobFailedException("provider.rejected", $"{provider} rejected the request ({status}): {MessageOf(body)}");
                }
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or OperationCanceledException)
            {
                if (last)
                {
                    var what = e is OperationCanceledException ? $"timed out after {retry.Timeout.TotalSeconds:0.#} s" : "could not be reached";
                    throw new JobFailedException("provider.unavailable", $"{provider} {what}.", retryable: true);
                }

                wait = Backoff(retry, attempt);
            }

            await Task.Delay(wait, time, ct);
        }
    }

    /// <summary>The provider's own error text: OpenAI and Gemini both send <c>{"error": {"message": ...}}</c>.</summary>
    public static string MessageOf(string body)
    {
        try
        {
            if (JsonNode.Parse(body)?["error"] is { } error)
            {
                var message = error is JsonObject o ? o["message"]?.GetValue<string>() : error.GetValue<string>();
                if (!string.IsNullOrWhiteSpace(message))
                {
                    return Clip(message);
                }
            }
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            // Not JSON: quote the text itself.
        }

        return string.IsNullOrWhiteSpace(body) ? "(empty body)" : Clip(body.Trim());
    }

    internal static TimeSpan? RetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        if (response.Headers.RetryAfter is { } ra)
        {
            if (ra.Delta is { } delta)
            {
                return delta;
            }

            if (ra.Date is { } date)
            {
                var d = date - time.GetUtcNow();
                return d > TimeSpan.Zero ? d : TimeSpan.Zero;
            }
        }

        return response.Headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var millis)
            ? TimeSpan.FromMilliseconds(millis) : null;
    }

    private static TimeSpan Backoff(ProviderRetry retry, int attempt) => retry.BaseBackoff * Math.Pow(2, attempt - 1);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static string Clip(string s) => s.Length <= MaxMessageChars ? s : s[..MaxMessageChars] + "…";
}
