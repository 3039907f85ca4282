using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

/// <summary>Generates fixture images with libvips (its generators and savers), through the binding.</summary>
internal static class TestImages
{
    public const int FrameWidth = 64;
    public const int FrameHeight = 48;

    public static string AnimatedGif(ScratchDirectory scratch, int frames) => Animated(scratch, frames, "gifsave", ".gif");

    public static string AnimatedWebp(ScratchDirectory scratch, int frames) => Animated(scratch, frames, "webpsave", ".webp");

    /// <summary>
    /// Re-encodes a file in the format its new extension names (.jpg, .png, .webp, .avif). Fixtures are made with
    /// libvips through the binding rather than the vips CLI, which the machines running the suite may not have.
    /// </summary>
    public static string Convert(ScratchDirectory scratch, string input, string outputName, int quality = 75)
    {
        var output = scratch.File(outputName);
        using var image = Pixels.Load(input);
        Save(image, output, quality);
        return output;
    }

    /// <summary>out = in * a + b per sample, cast back to 8 bits, saved as PNG.</summary>
    public static string Linear(ScratchDirectory scratch, string input, string outputName, double a, double b)
    {
        var output = scratch.File(outputName);
        using var image = Pixels.Load(input);
        using var changed = image.Call("linear", ("a", new[] { a }), ("b", new[] { b }), ("uchar", true));
        Save(changed, output, 100);
        return output;
    }

    private static void Save(VipsImage image, string path, int quality)
    {
        switch (Path.GetExtension(path))
        {
            case ".jpg":
                image.Save("jpegsave", path, CancellationToken.None, ("Q", quality), ("strip", true));
                break;
            case ".webp":
                image.Save("webpsave", path, CancellationToken.None, ("Q", quality));
                break;
            case ".avif":
                image.Save("heifsave", path, CancellationToken.None, ("Q", quality), ("compression", "av1"), ("bitdepth", 8));
                break;
            default:
                image.Save("pngsave", path, CancellationToken.None);
                break;
        }
    }

    /// <summary>A JPEG signature followed by random bytes: detected as JPEG, undecodable.</summary>
    public static string CorruptJpeg(ScratchDirectory scratch)
    {
        var bytes = new byte[8192];
        new Random(1234).NextBytes(bytes);
        bytes[0] = 0xFF;
        bytes[1] = 0xD8;
        bytes[2] = 0xFF;
        bytes[3] = 0xE0;
        var path = scratch.File("corrupt.jpg");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>The first half of a real JPEG: a valid header, then the data stops.</summary>
    public static string TruncatedJpeg(ScratchDirectory scratch)
    {
        var bytes = File.ReadAllBytes(TestPaths.CorpusFile("2569067123_aca715a2ee_o.jpg"));
        var path = scratch.File("truncated.jpg");
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        return path;
    }

    public static string Text(ScratchDirectory scratch)
    {
        var path = scratch.File("notes.jpg");
        File.WriteAllText(path, "plain text that only claims to be a JPEG by its name\n");
        return path;
    }

    public static string Empty(ScratchDirectory scratch)
    {
        var path = scratch.File("empty.jpg");
        File.WriteAllBytes(path, []);
        return path;
    }

    /// <summary>
    /// Frames of distinct solid colours joined into one tall strip with <c>page-height</c> set, which is how
    /// libvips represents an animation; the saver writes one frame per page.
    /// </summary>
    private static string Animated(ScratchDirectory scratch, int frames, string saver, string extension)
    {
        var path = scratch.File($"animated-{frames}{extension}");
        if (File.Exists(path))
        {
            return path;
        }

        var pages = new VipsImage[frames];
        try
        {
            for (var i = 0; i < frames; i++)
            {
                using var black = VipsOperation.Run("black", ("width", FrameWidth), ("height", FrameHeight), ("bands", 3));
                using var coloured = black.Call("linear", ("a", new[] { 1.0 }), ("b", new[] { i * 40.0 % 256, 255 - (i * 40.0 % 256), 128.0 }));
                pages[i] = coloured.Call("cast", ("format", "uchar"));
            }

            using var strip = VipsOperation.Run("arrayjoin", ("in", pages), ("across", 1));
            using var animation = strip.CopyWithInt("page-height", FrameHeight);
            animation.Save(saver, path, CancellationToken.None);
        }
        finally
        {
            foreach (var page in pages)
            {
                page?.Dispose();
            }
        }

        return path;
    }
}
