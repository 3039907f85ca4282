using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Media;
using Kiln.Media.Detection;

namespace Kiln.Processing;

/// <summary>Adds kind-specific metadata (dimensions, duration, codecs…) to what the probe records.</summary>
internal interface IAssetProber
{
    /// <summary>The media kind this prober reads: image, audio or video.</summary>
    string MediaKind { get; }

    Task<JsonObject> ProbeAsync(string path, CancellationToken cancellationToken);
}

/// <summary>
/// <c>probe</c>: reads the stored original, records its size, SHA-256 and the media kind detected from its bytes,
/// plus whatever the kind's prober reads. Every pipeline job waits for it.
/// </summary>
internal sealed class ProbeHandler(IEnumerable<IAssetProber> probers) : IJobHandler
{
    private readonly IAssetProber[] _probers = probers.ToArray();

    public string Kind => Kinds.Probe;

    public async Task<JobOutcome> ExecuteAsync(JobContext context, CancellationToken cancellationToken)
    {
        var path = context.RequireInput();
        var header = new byte[ContentSniffer.HeaderLength];
        string sha256;
        long size;
        int headerLength;
        await using (var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan))
        {
            size = file.Length;
            headerLength = await file.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken);
            file.Position = 0;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[256 * 1024];
            long done = 0;
            int read;
            while ((read = await file.ReadAsync(buffer, cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                done += read;
                context.Progress.Report(new JobProgress(size == 0 ? 50 : 50.0 * done / size, "hash", TotalBytes: size));
            }

            sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
        }

        var sniffed = ContentSniffer.Sniff(header.AsSpan(0, headerLength));
        var kind = sniffed.Kind.ToName();
        var metadata = new JsonObject
        {
            ["size"] = size,
            ["sha256"] = sha256,
            ["kind"] = kind,
            ["contentType"] = sniffed.ContentType,
        };

        foreach (var prober in _probers.Where(p => p.MediaKind == kind))
        {
            context.Progress.Report(new JobProgress(60, "probe:" + kind, TotalBytes: size));
            foreach (var (key, value) in await prober.ProbeAsync(path, cancellationToken))
            {
                metadata[key] = value?.DeepClone();
            }
        }

        return new JobOutcome(Result: metadata.DeepClone(), AssetMetadata: metadata);
    }
}
