using System.Diagnostics;
using System.Text;
using Kiln.Media;
using Kiln.Media.Detection;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Media.Detection;

/// <summary>Real files made once by ffmpeg (lavfi sources, a fraction of a second each) for the sniffer to read.</summary>
public sealed class GeneratedMedia : IAsyncLifetime
{
    private static readonly Dictionary<string, string[]> Recipes = new(StringComparer.Ordinal)
    {
        ["clip.mp4"] = [.. Video, "-c:v", "libx264", "-c:a", "aac"],
        ["clip.mov"] = [.. Video, "-c:v", "libx264", "-c:a", "aac"],
        ["clip.webm"] = [.. Video, "-c:v", "libvpx-vp9", "-c:a", "libopus"],
        ["clip.mkv"] = [.. Video, "-c:v", "libx264", "-c:a", "aac"],
        ["clip.ogv"] = [.. Video, "-c:v", "libtheora", "-c:a", "libvorbis"],
        ["clip.avi"] = [.. Video, "-c:v", "mpeg4", "-c:a", "libmp3lame"],
        ["clip.ts"] = [.. Video, "-c:v", "libx264", "-c:a", "aac", "-f", "mpegts"],
        ["clip.mpg"] = [.. Video, "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpeg"],
        ["tone.mp3"] = [.. Audio, "-c:a", "libmp3lame"],
        ["bare.mp3"] = [.. Audio, "-c:a", "libmp3lame", "-id3v2_version", "0", "-write_id3v1", "0", "-write_xing", "0"],
        ["tone.wav"] = [.. Audio, "-c:a", "pcm_s16le"],
        ["tone.ogg"] = [.. Audio, "-c:a", "libvorbis"],
        ["tone.opus"] = [.. Audio, "-c:a", "libopus"],
        ["tone.flac"] = [.. Audio, "-c:a", "flac"],
        ["tone.m4a"] = [.. Audio, "-c:a", "aac"],
        ["tone.aac"] = [.. Audio, "-c:a", "aac", "-f", "adts"],
        ["frame.gif"] = [.. Frame],
        ["frame.bmp"] = [.. Frame],
        ["frame.tiff"] = [.. Frame],
        ["frame.png"] = [.. Frame],
        ["frame.avif"] = [.. Frame, "-c:v", "libaom-av1", "-still-picture", "1"],
    };

    private static readonly string[] Quiet = ["-hide_banner", "-loglevel", "error", "-y"];

    private static string[] Video => ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.3", "-f", "lavfi", "-i", "sine=duration=0.3", "-shortest"];

    private static string[] Audio => ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.3"];

    private static string[] Frame => ["-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1"];

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("kiln-sniff-").FullName;

    public string PathOf(string name) => System.IO.Path.Combine(Directory, name);

    public async ValueTask InitializeAsync()
    {
        await Parallel.ForEachAsync(Recipes, new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (recipe, ct) =>
        {
            var psi = new ProcessStartInfo("ffmpeg") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var arg in Quiet.Concat(recipe.Value).Append(PathOf(recipe.Key)))
            {
                psi.ArgumentList.Add(arg);
            }

            using var process = Process.Start(psi)!;
            var stderr = process.StandardError.ReadToEndAsync(ct);
            await process.StandardOutput.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"ffmpeg could not make {recipe.Key}: {await stderr}");
            }
        });
    }

    public ValueTask DisposeAsync()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        return ValueTask.CompletedTask;
    }
}

public sealed class ContentSnifferTests(GeneratedMedia media) : IClassFixture<GeneratedMedia>
{
    [Theory]
    [InlineData("clip.mp4", MediaKind.Video, "video/mp4")]
    [InlineData("clip.mov", MediaKind.Video, "video/quicktime")]
    [InlineData("clip.webm", MediaKind.Video, "video/webm")]
    [InlineData("clip.mkv", MediaKind.Video, "video/x-matroska")]
    [InlineData("clip.ogv", MediaKind.Video, "video/ogg")]
    [InlineData("clip.avi", MediaKind.Video, "video/x-msvideo")]
    [InlineData("clip.ts", MediaKind.Video, "video/mp2t")]
    [InlineData("clip.mpg", MediaKind.Video, "video/mpeg")]
    [InlineData("tone.mp3", MediaKind.Audio, "audio/mpeg")]
    [InlineData("bare.mp3", MediaKind.Audio, "audio/mpeg")]
    [InlineData("tone.wav", MediaKind.Audio, "audio/wav")]
    [InlineData("tone.ogg", MediaKind.Audio, "audio/ogg")]
    [InlineData("tone.opus", MediaKind.Audio, "audio/ogg")]
    [InlineData("tone.flac", MediaKind.Audio, "audio/flac")]
    [InlineData("tone.m4a", MediaKind.Audio, "audio/mp4")]
    [InlineData("tone.aac", MediaKind.Audio, "audio/aac")]
    [InlineData("frame.gif", MediaKind.Image, "image/gif")]
    [InlineData("frame.bmp", MediaKind.Image, "image/bmp")]
    [InlineData("frame.tiff", MediaKind.Image, "image/tiff")]
    [InlineData("frame.png", MediaKind.Image, "image/png")]
    [InlineData("frame.avif", MediaKind.Image, "image/avif")]
    public void Ffmpeg_made_files_are_recognised_from_their_bytes(string name, MediaKind kind, string contentType)
    {
        var sniffed = ContentSniffer.Sniff(Header(media.PathOf(name)));
        Assert.Equal((kind, contentType), (sniffed.Kind, sniffed.ContentType));
    }

    [Fact]
    public void Every_corpus_image_is_recognised_as_the_format_its_bytes_hold()
    {
        var files = System.IO.Directory.EnumerateFiles(TestPaths.Corpus).Where(f => !f.EndsWith(".md", StringComparison.Ordinal)).ToList();
        Assert.True(files.Count >= 10, "the corpus has its images");
        foreach (var file in files)
        {
            var expected = System.IO.Path.GetExtension(file) switch
            {
                ".jpg" => "image/jpeg",
                ".png" => "image/png",
                ".webp" => "image/webp",
                var other => throw new InvalidOperationException("unexpected corpus file " + other),
            };
            var sniffed = ContentSniffer.Sniff(Header(file));
            Assert.Equal((MediaKind.Image, expected), (sniffed.Kind, sniffed.ContentType));
        }
    }

    [Fact]
    public void A_file_name_or_extension_has_no_say()
    {
        var renamed = System.IO.Path.Combine(media.Directory, "actually-a-flac.jpg");
        File.Copy(media.PathOf("tone.flac"), renamed, overwrite: true);
        Assert.Equal("audio/flac", ContentSniffer.Sniff(Header(renamed)).ContentType);
    }

    [Fact]
    public void Random_bytes_are_unknown()
    {
        var random = new Random(20240611);
        var buffer = new byte[ContentSniffer.HeaderLength];
        for (var i = 0; i < 500; i++)
        {
            random.NextBytes(buffer);
            Assert.Equal(ContentSniffer.Unknown, ContentSniffer.Sniff(buffer));
        }
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: example\r\n\r\n")]
    [InlineData("<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>")]
    [InlineData("%PDF-1.7\n")]
    [InlineData("{\"json\": true}")]
    [InlineData("")]
    public void Text_and_other_documents_are_unknown(string text)
    {
        Assert.Equal(ContentSniffer.Unknown, ContentSniffer.Sniff(Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void A_magic_number_alone_is_enough_for_a_tiny_file()
    {
        Assert.Equal("image/jpeg", ContentSniffer.Sniff([0xFF, 0xD8, 0xFF]).ContentType);
        Assert.Equal("audio/flac", ContentSniffer.Sniff("fLaC"u8).ContentType);
    }

    private static byte[] Header(string path)
    {
        using var file = File.OpenRead(path);
        var buffer = new byte[ContentSniffer.HeaderLength];
        var read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        return buffer[..read];
    }
}
