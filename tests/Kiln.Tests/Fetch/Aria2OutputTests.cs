using Kiln.Fetch;

namespace Kiln.Tests.Fetch;

/// <summary>aria2c's readout parser and arguments, on output captured from aria2 1.36.0.</summary>
public sealed class Aria2OutputTests
{
    [Theory]
    [InlineData("[#e4820c 720896B/30000000B(2%) CN:1 DL:630896B ETA:46s]", 720896L, 30000000L, 1, 630896d, 46d)]
    [InlineData("[#e4820c 20414464B/30000000B(68%) CN:4 DL:6911566B ETA:1s]", 20414464L, 30000000L, 4, 6911566d, 1d)]
    [InlineData("[#2089b0 409600B/34815000B(1%) CN:1 DL:118476B ETA:4m40s]", 409600L, 34815000L, 1, 118476d, 280d)]
    [InlineData("[#2089b0 409600B/34815000B(1%) CN:2 DL:1B ETA:1h2m3s]", 409600L, 34815000L, 2, 1d, 3723d)]
    public void Readout_lines_give_bytes_total_connections_speed_and_eta(string line, long done, long total, int connections, double speed, double eta)
    {
        var parsed = Aria2Output.Parse(line)!.Value;

        Assert.Equal(done, parsed.Done);
        Assert.Equal(total, parsed.Total);
        Assert.Equal(connections, parsed.Connections);
        Assert.Equal(speed, parsed.Speed);
        Assert.Equal(eta, parsed.EtaSeconds);
    }

    [Fact]
    public void A_readout_before_the_size_is_known_has_no_total_and_no_eta()
    {
        var parsed = Aria2Output.Parse("[#e4820c 0B/0B CN:1 DL:0B]")!.Value;

        Assert.Equal(0, parsed.Done);
        Assert.Null(parsed.Total);
        Assert.Null(parsed.EtaSeconds);
    }

    [Theory]
    [InlineData(" *** Download Progress Summary as of Mon Nov 30 06:34:35 2026 *** ")]
    [InlineData("FILE: /tmp/s2f/a2/download.part")]
    [InlineData("11/30 06:34:34 [ERROR] CUID#8 - Download aborted. URI=http://127.0.0.1:18765/big.bin")]
    [InlineData("")]
    public void Other_lines_are_not_progress(string line) => Assert.Null(Aria2Output.Parse(line));

    [Fact]
    public void The_arguments_ignore_config_use_the_proxy_for_everything_and_end_with_the_url_after_a_double_dash()
    {
        var url = new Uri("http://example.com/a.mp4");

        var args = Aria2Downloader.Arguments(url, "/d", new Uri("http://kiln:s@127.0.0.1:9/"), new FetchOptions { Aria2Connections = 4 });

        Assert.Equal(["--", url.AbsoluteUri], args[^2..]);
        Assert.Contains("--no-conf=true", args);
        Assert.Contains("--all-proxy=http://kiln:s@127.0.0.1:9/", args);
        Assert.Contains("--follow-torrent=false", args);
        Assert.Equal("4", args[args.IndexOf("-x") + 1]);
    }
}
