namespace Kiln.Media.Video;

/// <summary>One step of the ladder. <paramref name="Height"/> is the shorter side of the frame (see <see cref="HlsPackager"/>).</summary>
public sealed record HlsRung(string Name, int Height, int VideoBitrateKbps, int AudioBitrateKbps);

public sealed record HlsSettings
{
    /// <summary>Bit rates follow the usual 16:9 ladders (Apple's authoring guide, YouTube's recommendations) at the low end.</summary>
    public IReadOnlyList<HlsRung> Ladder { get; init; } =
    [
        new("360p", 360, 800, 96),
        new("720p", 720, 2800, 128),
        new("1080p", 1080, 5000, 128),
    ];

    /// <summary>Segment length; every segment starts with a keyframe so players can switch renditions there.</summary>
    public int SegmentSeconds { get; init; } = 4;

    /// <summary>x264 preset. HLS encodes every rung, so a fast preset keeps a 1080p ladder near real time on small machines.</summary>
    public string Preset { get; init; } = "veryfast";
}

public sealed record HlsRendition(string Name, int Width, int Height, long Bandwidth, string PlaylistPath, int SegmentCount);

public sealed record HlsResult(string MasterPlaylistPath, IReadOnlyList<HlsRendition> Renditions, TimeSpan? Duration, bool HasAudio);
