using System.Buffers.Binary;

namespace Kiln.Media.Transcription;

/// <summary>
/// Cuts a 16 kHz mono 16-bit PCM WAV into consecutive WAV files of at most <c>samplesPerChunk</c> samples each, by
/// copying sample ranges: the speech track is decoded once whatever the number of chunks (cutting each chunk from
/// the source with ffmpeg decoded the source from its start once per chunk), and each chunk's offset is exact to the
/// sample.
/// </summary>
public static class WavChunks
{
    private const int HeaderBytes = 44;
    private const int BytesPerSample = 2;

    public static async Task<IReadOnlyList<SpeechChunk>> SplitAsync(string wavPath, string directory, long samplesPerChunk, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerChunk, 1);
        await using var source = new FileStream(wavPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var (dataOffset, dataBytes) = await FindDataAsync(source, cancellationToken);
        var chunkBytes = samplesPerChunk * BytesPerSample;
        var count = Math.Max(1, (int)((dataBytes + chunkBytes - 1) / chunkBytes));
        var chunks = new List<SpeechChunk>(count);
        var buffer = new byte[128 * 1024];
        source.Position = dataOffset;
        for (var i = 0; i < count; i++)
        {
            var bytes = Math.Min(chunkBytes, dataBytes - (i * chunkBytes));
            var path = Path.Combine(directory, $"speech-{i:D4}.wav");
            await using (var chunk = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                await chunk.WriteAsync(Header(bytes), cancellationToken);
                for (var left = bytes; left > 0;)
                {
                    var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken);
                    if (read == 0)
                    {
                        throw new MediaException("media.transcribe_failed", "The extracted speech track ended early.");
                    }

                    await chunk.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    left -= read;
                }
            }

            chunks.Add(new SpeechChunk(path, (double)i * samplesPerChunk / SpeechAudio.SampleRate, (double)bytes / BytesPerSample / SpeechAudio.SampleRate));
        }

        return chunks;
    }

    /// <summary>Where the samples start and how many bytes they take, after checking the format is the one asked of ffmpeg.</summary>
    private static async Task<(long Offset, long Bytes)> FindDataAsync(FileStream wav, CancellationToken cancellationToken)
    {
        var head = new byte[12];
        await wav.ReadExactlyAsync(head, cancellationToken);
        if (!head.AsSpan(0, 4).SequenceEqual("RIFF"u8) || !head.AsSpan(8, 4).SequenceEqual("WAVE"u8))
        {
            throw new MediaException("media.transcribe_failed", "The extracted speech track is not a WAV file.");
        }

        var chunkHeader = new byte[8];
        var formatChecked = false;
        while (wav.Position + 8 <= wav.Length)
        {
            await wav.ReadExactlyAsync(chunkHeader, cancellationToken);
            var size = BinaryPrimitives.ReadUInt32LittleEndian(chunkHeader.AsSpan(4));
            var body = wav.Position;
            if (chunkHeader.AsSpan(0, 4).SequenceEqual("fmt "u8))
            {
                var fmt = new byte[16];
                await wav.ReadExactlyAsync(fmt, cancellationToken);
                formatChecked = BinaryPrimitives.ReadUInt16LittleEndian(fmt) == 1 && BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(2)) == 1
                    && BinaryPrimitives.ReadUInt32LittleEndian(fmt.AsSpan(4)) == SpeechAudio.SampleRate && BinaryPrimitives.ReadUInt16LittleEndian(fmt.AsSpan(14)) == 16;
            }
            else if (chunkHeader.AsSpan(0, 4).SequenceEqual("data"u8))
            {
                if (!formatChecked)
                {
                    throw new MediaException("media.transcribe_failed", "The extracted speech track is not 16 kHz mono 16-bit PCM.");
                }

                // A size the muxer could not fix up (0xFFFFFFFF, or past the end) means "to the end of the file".
                var bytes = Math.Min(size, wav.Length - body);
                return (body, bytes - (bytes % BytesPerSample));
            }

            wav.Position = body + size + (size & 1);
        }

        throw new MediaException("media.transcribe_failed", "The extracted speech track has no samples.");
    }

    private static byte[] Header(long dataBytes)
    {
        var h = new byte[HeaderBytes];
        var s = h.AsSpan();
        "RIFF"u8.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], (uint)(36 + dataBytes));
        "WAVEfmt "u8.CopyTo(s[8..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], 16);
        BinaryPrimitives.WriteUInt16LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(s[22..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], SpeechAudio.SampleRate);
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], SpeechAudio.SampleRate * BytesPerSample);
        BinaryPrimitives.WriteUInt16LittleEndian(s[32..], BytesPerSample);
        BinaryPrimitives.WriteUInt16LittleEndian(s[34..], 16);
        "data"u8.CopyTo(s[36..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[40..], (uint)dataBytes);
        return h;
    }
}
