namespace Kiln.Media.Images;

/// <summary>What an image file is, read from its header only.</summary>
/// <param name="Width">Width as displayed, after the EXIF orientation is applied.</param>
/// <param name="Height">Height as displayed, after the EXIF orientation is applied.</param>
/// <param name="StoredWidth">Width of the stored pixel grid (one frame).</param>
/// <param name="StoredHeight">Height of the stored pixel grid (one frame).</param>
/// <param name="Format">Format family detected from the bytes: jpeg, png, webp, gif, avif, heif or tiff.</param>
/// <param name="Orientation">EXIF orientation 1–8 (1 when absent).</param>
/// <param name="HasAlpha">True when the image has an alpha band.</param>
/// <param name="Pages">Pages or animation frames in the file (1 for a still image).</param>
/// <param name="Bands">Bands including alpha (3 for RGB, 4 for RGBA, 1 for grey …).</param>
/// <param name="Interpretation">libvips' colour interpretation nick: srgb, b-w, cmyk, rgb16, grey16 …</param>
public sealed record ImageInfo(
    int Width,
    int Height,
    int StoredWidth,
    int StoredHeight,
    string Format,
    int Orientation,
    bool HasAlpha,
    int Pages,
    int Bands,
    string Interpretation)
{
    /// <summary>True when the image embeds an ICC colour profile.</summary>
    public bool HasIccProfile { get; init; }

    /// <summary>True for a GIF or WebP with more than one frame.</summary>
    public bool IsAnimated => Pages > 1 && Format is ImageFamilies.Gif or ImageFamilies.Webp;

    public string ContentType => ImageFamilies.ContentType(Format);
}
