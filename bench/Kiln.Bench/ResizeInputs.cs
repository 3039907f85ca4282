using Kiln.Media.Vips;

namespace Kiln.Bench;

/// <summary>
/// Writes the resize benchmark's inputs, one per input family, into a directory (bench/run-resize.sh calls it), so
/// no large binary is committed: the 2725x2225 corpus photo re-encoded as an EXIF-rotated JPEG, a JPEG with an ICC
/// profile, an 8-bit and a 16-bit PNG, a WebP and a TIFF; the corpus' 2048x1536 RGBA PNG as the alpha case.
/// </summary>
internal sealed class ResizeInputs : IBenchmark
{
    public string Name => "resize-inputs";

    public string Description => "write the resize benchmark's inputs into DIR (one file per input family)";

    public Task<int> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("usage: resize-inputs DIR");
            return Task.FromResult(2);
        }

        var dir = Directory.CreateDirectory(args[0]).FullName;
        var corpus = Path.Combine(ResizeBenchmark.RepoRoot(), "..", "shared", "corpus");
        var photo = Path.Combine(corpus, "2569067123_aca715a2ee_o.jpg");
        VipsRuntime.Initialize(new VipsSettings());

        File.Copy(photo, Path.Combine(dir, "jpeg-plain.jpg"), overwrite: true);
        File.Copy(Path.Combine(corpus, "alpha-premultiply-2048x1536-paper.png"), Path.Combine(dir, "png-alpha.png"), overwrite: true);
        using var image = VipsOperation.Run("jpegload", ("filename", photo));
        using (var rotated = image.CopyWithInt("orientation", 6))
        {
            // libvips writes the orientation field into the EXIF block it saves.
            rotated.Save("jpegsave", Path.Combine(dir, "jpeg-exif6.jpg"), cancellationToken, ("Q", 90));
        }

        // An embedded profile makes every reader run a colour transform; libvips' built-in sRGB profile is the one
        // cameras and editors embed most often.
        image.Save("jpegsave", Path.Combine(dir, "jpeg-icc.jpg"), cancellationToken, ("Q", 90), ("profile", "srgb"));
        image.Save("pngsave", Path.Combine(dir, "png-8bit.png"), cancellationToken, ("compression", 6));
        using (var wide = image.Call("colourspace", ("space", "rgb16")))
        {
            wide.Save("pngsave", Path.Combine(dir, "png-16bit.png"), cancellationToken, ("compression", 6));
        }

        image.Save("webpsave", Path.Combine(dir, "webp.webp"), cancellationToken, ("Q", 80));
        image.Save("tiffsave", Path.Combine(dir, "tiff-lzw.tif"), cancellationToken, ("compression", "lzw"));
        foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
        {
            using var header = VipsOperation.Run(Loader(file), ("filename", file));
            Console.WriteLine($"{Path.GetFileName(file)} {header.Width}x{header.Height} bands={header.Bands} format={header.Format} {header.Interpretation} orientation={header.Orientation} icc={header.HasField("icc-profile-data")} {new FileInfo(file).Length} bytes");
        }

        return Task.FromResult(0);
    }

    private static string Loader(string file) => Path.GetExtension(file) switch
    {
        ".jpg" => "jpegload",
        ".png" => "pngload",
        ".webp" => "webpload",
        _ => "tiffload",
    };
}
