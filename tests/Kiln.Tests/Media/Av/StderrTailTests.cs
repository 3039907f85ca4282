using Kiln.Media.FFmpeg;

namespace Kiln.Tests.Media.Av;

public sealed class StderrTailTests
{
    [Fact]
    public void Only_the_last_lines_are_kept_oldest_first()
    {
        var tail = new StderrTail(capacity: 3);

        for (var i = 1; i <= 10; i++)
        {
            tail.Append($"line {i}\n");
        }

        Assert.Equal(["line 8", "line 9", "line 10"], tail.Lines());
    }

    [Fact]
    public void Lines_split_across_appends_and_carriage_returns_are_reassembled()
    {
        var tail = new StderrTail(capacity: 5);

        tail.Append("frame=  1\rframe=  2\rCon");
        tail.Append("version failed!\nunterminated");

        Assert.Equal(["frame=  1", "frame=  2", "Conversion failed!", "unterminated"], tail.Lines());
    }

    [Fact]
    public void Long_lines_are_cut_so_memory_stays_bounded()
    {
        var tail = new StderrTail(capacity: 2, maxLineLength: 10);

        tail.Append(new string('x', 100_000) + "\n");

        Assert.Equal(10, Assert.Single(tail.Lines()).Length);
    }

    [Fact]
    public void The_unterminated_line_counts_against_the_capacity()
    {
        var tail = new StderrTail(capacity: 2);

        tail.Append("a\nb\nc");

        Assert.Equal(["b", "c"], tail.Lines());
        Assert.Equal("b\nc", tail.ToString());
    }
}
