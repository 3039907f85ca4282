namespace Kiln.Media;

/// <summary>Progress of a media operation, reported through <see cref="IProgress{T}"/>.</summary>
/// <param name="Percent">0 to 100.</param>
/// <param name="Stage">A short machine-readable stage name, for example <c>encode</c> or <c>rendition:720p</c>.</param>
/// <param name="Speed">Processing speed relative to real time (ffmpeg's <c>speed=</c>), when known.</param>
/// <param name="Eta">Estimated time left, when known.</param>
/// <param name="TotalBytes">Bytes written so far, when known.</param>
public readonly record struct MediaProgress(
    double Percent,
    string? Stage = null,
    double? Speed = null,
    TimeSpan? Eta = null,
    long? TotalBytes = null);
