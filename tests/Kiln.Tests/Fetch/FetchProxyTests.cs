using System.Diagnostics;
using System.Text;
using Kiln.Fetch;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kiln.Tests.Fetch;

/// <summary>
/// The guarded proxy with curl as the client (a real child speaking real proxy HTTP). Only 127.0.0.1 is allowed
/// (Kiln:Fetch:AllowedNetworks); a second origin on 127.0.0.2 stays denied, so every refusal here is a real one.
/// </summary>
public sealed class FetchProxyTests : IAsyncLifetime
{
    private Origin _allowed = null!;
    private Origin _denied = null!;
    private FetchProxy _proxy = null!;

    public async ValueTask InitializeAsync()
    {
        _allowed = await Origin.StartAsync(Encoding.ASCII.GetBytes("allowed bytes"));
        _denied = await Origin.StartAsync(Encoding.ASCII.GetBytes("denied bytes"), "127.0.0.2");
        var options = Options.Create(new FetchOptions { AllowedNetworks = ["127.0.0.1/32"] });
        _proxy = new FetchProxy(new AddressGuard(options), options, NullLogger<FetchProxy>.Instance);
    }

    public async ValueTask DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _allowed.DisposeAsync();
        await _denied.DisposeAsync();
    }

    [Fact]
    public async Task Plain_http_is_forwarded_for_a_session_and_the_origin_never_sees_the_credential()
    {
        using var session = await _proxy.OpenSessionAsync(1 << 20, TestContext.Current.CancellationToken);

        var (status, body) = await CurlAsync(session.Url.AbsoluteUri, _allowed.Url("/file.jpg"));

        Assert.Equal("200 000", status);
        Assert.Equal("allowed bytes", body);
        Assert.Null(session.Failure);
        Assert.InRange(session.Bytes, "allowed bytes".Length + 1, 4096);
    }

    [Fact]
    public async Task A_connect_tunnel_is_opened_to_an_allowed_address()
    {
        using var session = await _proxy.OpenSessionAsync(1 << 20, TestContext.Current.CancellationToken);

        var (status, body) = await CurlAsync(session.Url.AbsoluteUri, _allowed.Url("/file.jpg"), "--proxytunnel");

        Assert.Equal("200 200", status);
        Assert.Equal("allowed bytes", body);
        Assert.Equal(1, _allowed.Hits("/file.jpg"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_denied_address_is_refused_at_connect_time_and_recorded_on_the_session(bool tunnel)
    {
        using var session = await _proxy.OpenSessionAsync(1 << 20, TestContext.Current.CancellationToken);

        var (status, _) = await CurlAsync(session.Url.AbsoluteUri, _denied.Url("/file.jpg"), tunnel ? "--proxytunnel" : "--no-proxytunnel");

        // Through a tunnel the 403 answers the CONNECT (curl then reports no response code of the origin's).
        Assert.Equal(tunnel ? "000 403" : "403 000", status);
        Assert.Equal("fetch.forbidden_address", session.Failure?.Code);
        Assert.Contains("127.0.0.2", session.Failure?.Message, StringComparison.Ordinal);
        Assert.Empty(_denied.Requests);
    }

    [Fact]
    public async Task Without_the_session_credential_the_proxy_answers_407_and_connects_nowhere()
    {
        using var session = await _proxy.OpenSessionAsync(1 << 20, TestContext.Current.CancellationToken);
        var wrong = new UriBuilder(session.Url) { Password = "guessed" }.Uri;
        var anonymous = new UriBuilder(session.Url) { UserName = "", Password = "" }.Uri;

        Assert.Equal("407 000", (await CurlAsync(wrong.AbsoluteUri, _allowed.Url("/file.jpg"))).Status);
        Assert.Equal("407 000", (await CurlAsync(anonymous.AbsoluteUri, _allowed.Url("/file.jpg"))).Status);
        Assert.Equal("000 407", (await CurlAsync(wrong.AbsoluteUri, _allowed.Url("/file.jpg"), "--proxytunnel")).Status);
        session.Dispose();
        Assert.Equal("407 000", (await CurlAsync(session.Url.AbsoluteUri, _allowed.Url("/file.jpg"))).Status);
        Assert.Empty(_allowed.Requests);
    }

    [Fact]
    public async Task Bytes_over_the_session_limit_cut_the_transfer_and_fail_it_as_too_large()
    {
        _allowed.Files["big.bin"] = (new byte[256 * 1024], "application/octet-stream");
        using var session = await _proxy.OpenSessionAsync(64 * 1024, TestContext.Current.CancellationToken);

        var (_, body) = await CurlAsync(session.Url.AbsoluteUri, _allowed.Url("/files/big.bin"));

        Assert.Equal("fetch.too_large", session.Failure?.Code);
        Assert.True(body.Length < 256 * 1024, $"curl received {body.Length} bytes");
    }

    private static async Task<(string Status, string Body)> CurlAsync(string proxy, Uri url, params string[] extra)
    {
        var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-s", "--max-time", "60", "-x", proxy, "-w", "\n%{http_code} %{http_connect}", .. extra, "--", url.AbsoluteUri])
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        var newline = output.LastIndexOf('\n');
        return (output[(newline + 1)..], output[..newline]);
    }
}
