namespace Kiln.Media.FFmpeg;

/// <summary>
/// The outcome of re-encoding a file to save space. When the encoded file is not smaller, the original is the
/// better result: <see cref="KeptOriginal"/> is true, <see cref="OutputPath"/> is the input path, nothing is
/// written to the requested output path, and <see cref="Note"/> says why.
/// </summary>
/// <param name="EncodedBytes">Size of what the encoder produced, kept or not.</param>
public sealed record AvOptimizeResult(
    string OutputPath,
    long OriginalBytes,
    long OutputBytes,
    long BytesSaved,
    long EncodedBytes,
    bool KeptOriginal,
    string? Note,
    TimeSpan? Duration)
{
    /// <summary>Commits the staged encode when it is smaller than the original, otherwise discards it.</summary>
    internal static AvOptimizeResult Decide(string inputPath, StagedFile encoded, TimeSpan? duration)
    {
        var original = AvPaths.SizeOf(inputPath);
        var produced = AvPaths.SizeOf(encoded.TempPath);
        if (produced >= original)
        {
            return new AvOptimizeResult(
                Path.GetFullPath(inputPath), original, original, 0, produced, KeptOriginal: true,
                $"The encoded file ({produced} bytes) is not smaller than the original ({original} bytes); the original is kept.",
                duration);
        }

        encoded.Commit();
        return new AvOptimizeResult(encoded.FinalPath, original, produced, original - produced, produced, KeptOriginal: false, null, duration);
    }
}
