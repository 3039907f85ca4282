using System.Diagnostics;
using System.Globalization;
using Kiln.Media.Vips;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Images;

/// <summary>Generates fixture images: with the <c>vips</c> CLI (independent of the code under test) or libvips' own generators.</summary>
internal static class TestImages
{
    public const int FrameWidth = 64;
    public const int FrameHeight = 48;

    public static string AnimatedGif(ScratchDirectory scratch, int frames) => Animated(scratch, frames, "gifsave", ".gif");

    public static string AnimatedWebp(ScratchDirectory scratch, int frames) => Animated(scratch, frames, "webpsave", ".webp");

    /// <summary>Converts a file with the vips CLI; the output format follows the extension, options go to the saver.</summary>
    public static string Convert(ScratchDirectory scratch, string input, string outputName, string saverOptions = "")
    {
        var output = scratch.File(outputName);
        RunVips("copy", input, output + saverOptions);
        return output;
    }

    /// <summary>out = in * a + b per sample, cast back to 8 bits, with the vips CLI.</summary>
    public static string Linear(ScratchDirectory scratch, string input, string outputName, double a, double b)
    {
        var output = scratch.File(outputName);
        RunVips("linear", input, output, a.ToString(CultureInfo.InvariantCulture), b.ToString(CultureInfo.InvariantCulture), "--uchar");
        return output;
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

    private static void RunVips(params string[] arguments)
    {
        var start = new ProcessStartInfo("vips") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"vips {string.Join(' ', arguments)} failed: {stderr.Result}{stdout.Result}");
        }
    }
}
