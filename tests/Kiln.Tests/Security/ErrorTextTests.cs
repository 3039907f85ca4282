using Kiln.Queue;

namespace Kiln.Tests.Security;

public sealed class ErrorTextTests
{
    [Theory]
    [InlineData("file:/srv/kiln/data/originals/01/0192.mp4: Invalid data found when processing input", "0192.mp4: Invalid data found when processing input")]
    [InlineData("VipsJpeg: unable to open \"/tmp/kiln/jobs/abc/in.jpg\"", "VipsJpeg: unable to open \"in.jpg\"")]
    [InlineData("Could not find a part of the path '/var/lib/kiln/tmp/jobs/x/out-1/'.", "Could not find a part of the path '<path>'.")]
    [InlineData("[mov,mp4 @ 0x55] moov atom not found\n/data/originals/a.mp4: Invalid data", "[mov,mp4 @ 0x55] moov atom not found\na.mp4: Invalid data")]
    public void Absolute_paths_are_cut_to_their_file_name(string message, string expected) =>
        Assert.Equal(expected, ErrorText.WithoutPaths(message));

    [Theory]
    [InlineData("GET http://127.0.0.1:8080/api/files/1/download answered 404")]
    [InlineData("bitrate 128k/s; ratio 1/2 and size 3/4")]
    [InlineData("quality must be between 1 and 100.")]
    public void Text_without_a_path_is_left_alone(string message) =>
        Assert.Equal(message, ErrorText.WithoutPaths(message));
}
