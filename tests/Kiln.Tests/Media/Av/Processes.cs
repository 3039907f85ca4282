using System.Diagnostics;
using Kiln.Media;

namespace Kiln.Tests.Media.Av;

/// <summary>Finds processes by a unique string in their command line, to prove a killed ffmpeg is really gone.</summary>
internal static class Processes
{
    public static async Task<IReadOnlyList<int>> FindAsync(string marker, CancellationToken ct)
    {
        var start = new ProcessStartInfo("pgrep") { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-f");
        start.ArgumentList.Add(marker);
        using var pgrep = Process.Start(start)!;
        var output = await pgrep.StandardOutput.ReadToEndAsync(ct);
        await pgrep.WaitForExitAsync(ct);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
    }
}

/// <summary>Collects reports synchronously (unlike <see cref="Progress{T}"/>, which posts them to the thread pool).</summary>
internal sealed class RecordingProgress(Action<MediaProgress>? onReport = null) : IProgress<MediaProgress>
{
    private readonly List<MediaProgress> _reports = [];
    private readonly Lock _gate = new();

    public IReadOnlyList<MediaProgress> Reports
    {
        get
        {
            lock (_gate)
            {
                return _reports.ToList();
            }
        }
    }

    public void Report(MediaProgress value)
    {
        lock (_gate)
        {
            _reports.Add(value);
        }

        onReport?.Invoke(value);
    }
}

/// <summary>Top-level MP4 boxes in file order, to check that <c>moov</c> precedes <c>mdat</c> (faststart).</summary>
internal static class Mp4Boxes
{
    public static List<string> TopLevel(string path)
    {
        using var file = File.OpenRead(path);
        var types = new List<string>();
        Span<byte> header = stackalloc byte[16];
        while (file.Position + 8 <= file.Length)
        {
            var start = file.Position;
            file.ReadExactly(header[..8]);
            long size = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(header);
            types.Add(System.Text.Encoding.ASCII.GetString(header[4..8]));
            if (size == 1)
            {
                file.ReadExactly(header[8..16]);
                size = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
            }
            else if (size == 0)
            {
                break;
            }

            file.Position = start + size;
        }

        return types;
    }
}
