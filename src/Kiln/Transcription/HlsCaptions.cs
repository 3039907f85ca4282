using Kiln.Assets;
using Kiln.Media.Transcription;

namespace Kiln.Transcription;

/// <summary>The active transcript as the captions of an HLS output (<see cref="HlsSubtitles"/>), for Assets' file endpoints.</summary>
internal sealed class HlsCaptions(TranscriptStore transcripts) : IHlsCaptions
{
    public bool IsCaptionPath(string path) => path is HlsSubtitles.PlaylistPath or HlsSubtitles.VttPath;

    public async Task<string> AddToMasterAsync(Guid assetId, string master, CancellationToken cancellationToken) =>
        await transcripts.GetActiveAsync(assetId, cancellationToken) is { } captions
            ? HlsSubtitles.AddToMaster(master, captions.Info.Language)
            : master;

    public async Task<HlsCaptionFile?> GetAsync(Guid assetId, string path, double? duration, CancellationToken cancellationToken)
    {
        if (!IsCaptionPath(path) || await transcripts.GetActiveAsync(assetId, cancellationToken) is not { } captions)
        {
            return null;
        }

        return path == HlsSubtitles.VttPath
            ? new HlsCaptionFile(SubtitleWriter.ToVtt(captions.Segments), IsPlaylist: false, "text/vtt; charset=utf-8")
            : new HlsCaptionFile(
                HlsSubtitles.MediaPlaylist(duration ?? (captions.Segments.Count > 0 ? captions.Segments[^1].End : 1)), IsPlaylist: true, HlsPlaylist.ContentType);
    }
}
