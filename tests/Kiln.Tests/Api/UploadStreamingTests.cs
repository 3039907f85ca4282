using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Api;

/// <summary>Runs alone: it measures the process's allocations, which other tests running beside it would blur.</summary>
[CollectionDefinition(nameof(MeasuredAlone), DisableParallelization = true)]
public sealed class MeasuredAlone;

[Collection(nameof(MeasuredAlone))]
public sealed class UploadStreamingTests : IAsyncLifetime
{
    private const long FileBytes = 200L * 1024 * 1024;
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_200_MB_upload_is_streamed_to_disk_without_being_held_in_memory()
    {
        var boundary = "kiln-stream-test";
        using var content = new GeneratedMultipart(boundary, "big.bin", FileBytes);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/uploads") { Content = content };

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        long peakHeap = heapBefore;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(forceFullCollection: false));
                // The sampling rate of the heap probe, not a wait for something.
                await Task.Delay(5, CancellationToken.None);
            }
        });

        using var response = await _server.Admin.SendAsync(request);
        await sampling.CancelAsync();
        await sampler;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        var body = await response.Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var asset = body!["assets"]![0]!;
        Assert.Equal(FileBytes, asset["size"]!.GetValue<long>());
        var stored = Path.Combine(_server.DataDirectory, "originals", asset["id"]!.GetValue<Guid>().ToString("N"), "original");
        Assert.Equal(FileBytes, new FileInfo(stored).Length);
        Assert.Equal(content.Sha256, await HashAsync(stored));

        // Client and server share this process, so these bound both: far below the file's 200 MB (measured: ~3.5 MB each).
        Assert.True(allocated < 32L * 1024 * 1024, $"allocated {allocated / 1024 / 1024} MB while uploading 200 MB");
        Assert.True(peakHeap - heapBefore < 64L * 1024 * 1024, $"managed heap grew by {(peakHeap - heapBefore) / 1024 / 1024} MB");
    }

    private static async Task<string> HashAsync(string path)
    {
        await using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(file));
    }

    /// <summary>A multipart body with one generated file part, written from one reused buffer: nothing is held whole.</summary>
    private sealed class GeneratedMultipart : HttpContent
    {
        private readonly byte[] _head;
        private readonly byte[] _tail;
        private readonly long _length;
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public GeneratedMultipart(string boundary, string fileName, long length)
        {
            _length = length;
            _head = System.Text.Encoding.ASCII.GetBytes(
                $"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{fileName}\"\r\nContent-Type: application/octet-stream\r\n\r\n");
            _tail = System.Text.Encoding.ASCII.GetBytes($"\r\n--{boundary}--\r\n");
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("multipart/form-data");
            Headers.ContentType.Parameters.Add(new System.Net.Http.Headers.NameValueHeaderValue("boundary", boundary));
        }

        public string Sha256 { get; private set; } = "";

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(_head);
            var buffer = new byte[256 * 1024];
            var random = new Random(42);
            for (long sent = 0; sent < _length; sent += buffer.Length)
            {
                random.NextBytes(buffer);
                var count = (int)Math.Min(buffer.Length, _length - sent);
                _hash.AppendData(buffer, 0, count);
                await stream.WriteAsync(buffer.AsMemory(0, count));
            }

            Sha256 = Convert.ToHexStringLower(_hash.GetHashAndReset());
            await stream.WriteAsync(_tail);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _head.Length + _length + _tail.Length;
            return true;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _hash.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
