namespace Kiln.Assets;

/// <summary>
/// A captions rendition served with an HLS output, made on request (nothing is written next to the segments).
/// Transcription provides it; Assets serves the files and knows nothing of transcripts, so the dependency points
/// from Transcription to Assets only.
/// </summary>
internal interface IHlsCaptions
{
    /// <summary>True for the paths beside an HLS master that name the captions rendition rather than a file on disk.</summary>
    bool IsCaptionPath(string path);

    /// <summary>The master playlist with the captions rendition added, or unchanged when the asset has none.</summary>
    Task<string> AddToMasterAsync(Guid assetId, string master, CancellationToken cancellationToken);

    /// <summary>One of the <see cref="IsCaptionPath"/> files for the asset, or null when it has no captions.</summary>
    Task<HlsCaptionFile?> GetAsync(Guid assetId, string path, double? duration, CancellationToken cancellationToken);
}

/// <param name="Text">The file's text.</param>
/// <param name="IsPlaylist">A playlist (served with signed references like the others) rather than the captions themselves.</param>
/// <param name="ContentType">The content type of a non-playlist file.</param>
internal sealed record HlsCaptionFile(string Text, bool IsPlaylist, string ContentType);
