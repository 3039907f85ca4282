using Kiln.Media.Vips;
using Microsoft.Extensions.Time.Testing;

namespace Kiln.Tests.Media.Images;

public sealed class RepeatedLogFilterTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly List<(VipsLogLevel Level, string Message)> _lines = [];

    [Fact]
    public void A_message_repeated_707_times_is_logged_once_and_then_as_a_count_when_the_window_ends()
    {
        using var filter = new RepeatedLogFilter((l, m) => _lines.Add((l, m)), _time, TimeSpan.FromSeconds(60), maxDistinct: 20);
        for (var i = 0; i < 707; i++)
        {
            filter.Log(VipsLogLevel.Warning, "TIFFReadDirectory: Unknown field with tag 33000");
        }

        Assert.Equal([(VipsLogLevel.Warning, "TIFFReadDirectory: Unknown field with tag 33000")], _lines);

        // No further message arrives: the window's timer still reports the count.
        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(2, _lines.Count);
        Assert.Equal((VipsLogLevel.Warning, "TIFFReadDirectory: Unknown field with tag 33000 (repeated 706 more times in 60 s)"), _lines[1]);

        // A new window logs the message again.
        filter.Log(VipsLogLevel.Warning, "TIFFReadDirectory: Unknown field with tag 33000");
        Assert.Equal(3, _lines.Count);
    }

    [Fact]
    public void At_most_max_distinct_messages_pass_per_window_and_the_rest_are_counted()
    {
        using var filter = new RepeatedLogFilter((l, m) => _lines.Add((l, m)), _time, TimeSpan.FromSeconds(10), maxDistinct: 3);
        for (var i = 0; i < 100; i++)
        {
            filter.Log(VipsLogLevel.Warning, $"distinct message {i}");
        }

        Assert.Equal(["distinct message 0", "distinct message 1", "distinct message 2"], _lines.Select(l => l.Message));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal("97 more messages of other kinds suppressed in 10 s", _lines[^1].Message);
    }

    [Fact]
    public void Messages_that_differ_in_level_are_counted_apart()
    {
        using var filter = new RepeatedLogFilter((l, m) => _lines.Add((l, m)), _time, TimeSpan.FromSeconds(10), maxDistinct: 20);
        filter.Log(VipsLogLevel.Warning, "same");
        filter.Log(VipsLogLevel.Critical, "same");
        filter.Log(VipsLogLevel.Critical, "same");

        Assert.Equal([VipsLogLevel.Warning, VipsLogLevel.Critical], _lines.Select(l => l.Level));
        filter.Flush();
        Assert.Equal((VipsLogLevel.Critical, "same (repeated 1 more times in 10 s)"), _lines[^1]);
    }
}
