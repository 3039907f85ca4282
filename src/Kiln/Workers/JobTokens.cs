using System.Security.Cryptography;
using System.Text;

namespace Kiln.Workers;

/// <summary>
/// Per-job tokens for a remote worker's file transfers: <c>{leaseId:N}.{HMAC-SHA256(secret, jobId|leaseId)}</c>.
/// A token names one lease of one job, so it is useless for any other job and dead once the lease ends (the
/// endpoints check the lease is still held). The secret lives in the database, so any node can check any token.
/// </summary>
internal sealed class JobTokens(WorkerStore store) : IDisposable
{
    private const string SecretName = "job_tokens";
    private readonly SemaphoreSlim _gate = new(1, 1);
    private byte[]? _secret;

    public async Task<string> IssueAsync(Guid jobId, Guid leaseId, CancellationToken cancellationToken)
    {
        var secret = await SecretAsync(cancellationToken);
        return leaseId.ToString("N") + "." + Sign(secret, jobId, leaseId);
    }

    /// <summary>The lease the token was issued for, when its signature is right for this job; null otherwise.</summary>
    public async Task<Guid?> ReadAsync(Guid jobId, string? token, CancellationToken cancellationToken)
    {
        if (token is not { Length: > 33 } || token[32] != '.' || !Guid.TryParseExact(token.AsSpan(0, 32), "N", out var leaseId))
        {
            return null;
        }

        var expected = Encoding.ASCII.GetBytes(Sign(await SecretAsync(cancellationToken), jobId, leaseId));
        var given = Encoding.ASCII.GetBytes(token[33..]);
        return CryptographicOperations.FixedTimeEquals(expected, given) ? leaseId : null;
    }

    public void Dispose() => _gate.Dispose();

    private static string Sign(byte[] secret, Guid jobId, Guid leaseId)
    {
        Span<byte> message = stackalloc byte[32];
        jobId.TryWriteBytes(message[..16]);
        leaseId.TryWriteBytes(message[16..]);
        return Convert.ToBase64String(HMACSHA256.HashData(secret, message)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private async ValueTask<byte[]> SecretAsync(CancellationToken ct)
    {
        if (_secret is { } known)
        {
            return known;
        }

        await _gate.WaitAsync(ct);
        try
        {
            for (var attempt = 1; _secret is null; attempt++)
            {
                _secret = await store.SecretAsync(SecretName, ct);
                if (_secret is null)
                {
                    if (attempt >= 5)
                    {
                        throw new InvalidOperationException("The job token secret could not be read.");
                    }

                    await Task.Delay(20 * attempt, ct);
                }
            }

            return _secret;
        }
        finally
        {
            _gate.Release();
        }
    }
}
