namespace Kiln.Media.Images;

/// <summary>How a thumbnail fills its box.</summary>
public enum ThumbnailFit
{
    /// <summary>Scale to fit inside the box; one side may be shorter.</summary>
    Inside = 0,

    /// <summary>Scale to cover the box, then crop the centre to exactly the box.</summary>
    Cover,
}

/// <summary>One thumbnail to make. <see cref="Name"/> names the output file (lower-cased) and the derivative.</summary>
public sealed record ThumbnailSpec(
    string Name,
    int Width,
    int Height,
    ThumbnailFit Fit = ThumbnailFit.Inside,
    ImageOutputFormat Format = ImageOutputFormat.Jpeg,
    int Quality = 80)
{
    public static ThumbnailSpec Thumbnail { get; } = new("THUMBNAIL", 150, 150, ThumbnailFit.Cover);

    public static ThumbnailSpec Medium { get; } = new("MEDIUM", 800, 600);

    public static ThumbnailSpec Large { get; } = new("LARGE", 1920, 1080);

    /// <summary>THUMBNAIL 150x150 cover, MEDIUM 800x600 inside, LARGE 1920x1080 inside, all JPEG Q80.</summary>
    public static IReadOnlyList<ThumbnailSpec> Defaults { get; } = [Thumbnail, Medium, Large];

    internal void Validate()
    {
        if (string.IsNullOrEmpty(Name) || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw new ArgumentException($"Thumbnail name '{Name}' must be ASCII letters, digits, '-' or '_' (it names a file).", nameof(Name));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(Width, 1, nameof(Width));
        ArgumentOutOfRangeException.ThrowIfLessThan(Height, 1, nameof(Height));
        ArgumentOutOfRangeException.ThrowIfLessThan(Quality, 1, nameof(Quality));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Quality, 100, nameof(Quality));
    }
}

/// <summary>One thumbnail written by <see cref="ImageThumbnailer.Generate"/>.</summary>
public sealed record ThumbnailResult(string Name, string Path, int Width, int Height, string ContentType, long Bytes);

/// <summary>
/// What <see cref="ImageThumbnailer.Make"/> wrote, and how many times it decoded the input for it: 1 when the sizes
/// shared a decode, one per size streamed from the file, 0 when it was handed a decode made for several derivatives.
/// </summary>
public sealed record ThumbnailBatch(IReadOnlyList<ThumbnailResult> Thumbnails, int Decodes);
