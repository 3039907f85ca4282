using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Kiln.Storage;
using Microsoft.Extensions.Options;

namespace Kiln.Security;

internal enum SignatureCheck
{
    Valid,
    Expired,
    Invalid,
}

/// <summary>A signed URL: the download path with <c>expires</c> and <c>sig</c>, and the query alone for content paths.</summary>
internal sealed record SignedUrl(string Url, string Query, DateTimeOffset ExpiresAt);

/// <summary>
/// Short-lived signed URLs for browsers, which cannot put an API key on an &lt;img&gt; or &lt;video&gt; request.
/// The signature is HMAC-SHA256 over the file id and the expiry (unix seconds), so it opens that file's download
/// and the files beside it (HLS segments) until it expires, and nothing else.
/// </summary>
internal sealed class UrlSigner
{
    private const string KeyFile = "url-signing.key";
    private readonly byte[] _key;
    private readonly TimeProvider _time;

    public UrlSigner(IOptions<SecurityOptions> options, BlobStore blobs, TimeProvider time)
    {
        _time = time;
        _key = string.IsNullOrEmpty(options.Value.UrlSigningKey)
            ? LoadOrCreateKey(Path.Combine(blobs.Root, "keys", KeyFile))
            : Convert.FromBase64String(options.Value.UrlSigningKey);
    }

    public SignedUrl Sign(Guid fileId, TimeSpan lifetime)
    {
        var expires = _time.GetUtcNow().Add(lifetime).ToUnixTimeSeconds();
        var query = $"expires={expires.ToString(CultureInfo.InvariantCulture)}&sig={Signature(fileId, expires)}";
        return new SignedUrl($"/api/files/{fileId}/download?{query}", query, DateTimeOffset.FromUnixTimeSeconds(expires));
    }

    public SignatureCheck Verify(Guid fileId, string? expires, string? signature)
    {
        if (!long.TryParse(expires, NumberStyles.None, CultureInfo.InvariantCulture, out var expiresAt) || string.IsNullOrEmpty(signature))
        {
            return SignatureCheck.Invalid;
        }

        var expected = Encoding.ASCII.GetBytes(Signature(fileId, expiresAt));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(signature)))
        {
            return SignatureCheck.Invalid;
        }

        // Checked after the signature, so a tampered expiry reads as tampering rather than as expired.
        return _time.GetUtcNow().ToUnixTimeSeconds() < expiresAt ? SignatureCheck.Valid : SignatureCheck.Expired;
    }

    private string Signature(Guid fileId, long expires)
    {
        var payload = Encoding.ASCII.GetBytes($"kiln-file-v1|{fileId:N}|{expires.ToString(CultureInfo.InvariantCulture)}");
        return Convert.ToBase64String(HMACSHA256.HashData(_key, payload)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Reads the key shared through the data directory, creating it once (first writer wins).</summary>
    private static byte[] LoadOrCreateKey(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path))
        {
            var temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var stream = new FileStream(temp, options))
            {
                stream.Write(RandomNumberGenerator.GetBytes(32));
            }

            try
            {
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another node created it first; use theirs.
                File.Delete(temp);
            }
        }

        var key = File.ReadAllBytes(path);
        return key.Length >= 32 ? key : throw new InvalidOperationException($"The URL signing key {path} is shorter than 32 bytes; delete it to have a new one created.");
    }
}
