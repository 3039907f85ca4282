using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Fetch;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Fetch;

/// <summary>The deny-by-default rule, with Kiln:Fetch:AllowPrivateNetworks left off as in production.</summary>
public sealed class FetchGuardTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("http://2130706433/")]
    [InlineData("http://0177.0.0.1/")]
    [InlineData("http://0x7f.0.0.1/")]
    [InlineData("http://127.1/")]
    [InlineData("http://[::ffff:127.0.0.1]/")]
    [InlineData("http://[::1]/")]
    [InlineData("http://[::]/")]
    [InlineData("http://0.0.0.0/")]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://10.0.0.1/")]
    [InlineData("http://172.16.5.4/")]
    [InlineData("http://192.168.1.1/")]
    [InlineData("http://100.64.0.1/")]
    [InlineData("http://224.0.0.1/")]
    [InlineData("http://[fd00::1]/")]
    [InlineData("http://[fe80::1]/")]
    [InlineData("http://[::127.0.0.1]/")]
    public async Task Literal_forbidden_addresses_in_every_spelling_are_refused_up_front(string url)
    {
        using var response = await _server.Admin.PostAsJsonAsync("/api/downloads", new JsonObject { ["url"] = url });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("fetch.forbidden_address", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://example.com/a.jpg")]
    [InlineData("gopher://example.com/")]
    [InlineData("not a url")]
    public async Task Only_http_and_https_are_accepted(string url)
    {
        using var response = await _server.Admin.PostAsJsonAsync("/api/downloads", new JsonObject { ["url"] = url });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("fetch.bad_url", (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_name_resolving_to_loopback_is_refused_at_connect_time_and_not_retried()
    {
        // localhost passes the up-front check (it is a name); the connection to Kiln's own port must not happen.
        var url = $"http://localhost:{_server.BaseAddress.Port}/api/keys";
        using var response = await _server.Admin.PostAsJsonAsync("/api/downloads", new JsonObject { ["url"] = url });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var jobId = (await response.Content.ReadFromJsonAsync<JsonObject>())!["jobId"]!.GetValue<Guid>();

        var job = await _server.WaitForJobAsync(jobId, ["completed", "failed"], TimeSpan.FromSeconds(90));
        Assert.Equal("failed", job["state"]!.GetValue<string>());
        Assert.Equal("fetch.forbidden_address", job["errorCode"]!.GetValue<string>());
        Assert.Equal(1, job["attempts"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("::ffff:10.1.2.3", "private")]
    [InlineData("64:ff9b::7f00:1", "loopback")]
    [InlineData("2002:a9fe:a9fe::1", "link-local")]
    [InlineData("100.127.255.255", "CGNAT")]
    [InlineData("255.255.255.255", "reserved")]
    [InlineData("ff02::1", "multicast")]
    public void Addresses_are_classified_by_the_range_they_fall_in(string address, string reason) =>
        Assert.Equal(reason, AddressGuard.Refusal(IPAddress.Parse(address), allowPrivateNetworks: false));

    [Fact]
    public void Allowing_private_networks_still_refuses_metadata_multicast_and_unspecified_but_public_addresses_pass()
    {
        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("127.0.0.1"), allowPrivateNetworks: true));
        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("fd12::1"), allowPrivateNetworks: true));
        Assert.Equal("cloud metadata", AddressGuard.Refusal(IPAddress.Parse("169.254.169.254"), allowPrivateNetworks: true));
        Assert.Equal("multicast", AddressGuard.Refusal(IPAddress.Parse("239.1.1.1"), allowPrivateNetworks: true));
        Assert.Equal("unspecified", AddressGuard.Refusal(IPAddress.Parse("0.0.0.0"), allowPrivateNetworks: true));
        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("93.184.216.34"), allowPrivateNetworks: false));
        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("2606:2800:220:1::1"), allowPrivateNetworks: false));
    }

    [Fact]
    public void Allowed_networks_open_exactly_their_range_and_never_the_metadata_address()
    {
        var options = new FetchOptions { AllowedNetworks = ["127.0.0.1/32", "169.254.0.0/16"] };

        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("127.0.0.1"), options));
        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("::ffff:127.0.0.1"), options));
        Assert.Equal("loopback", AddressGuard.Refusal(IPAddress.Parse("127.0.0.2"), options));
        Assert.Equal("loopback", AddressGuard.Refusal(IPAddress.Parse("::1"), options));
        Assert.Null(AddressGuard.Refusal(IPAddress.Parse("169.254.1.1"), options));
        Assert.Equal("cloud metadata", AddressGuard.Refusal(IPAddress.Parse("169.254.169.254"), options));
        Assert.Equal("cloud metadata", AddressGuard.Refusal(IPAddress.Parse("::ffff:169.254.169.254"), allowPrivateNetworks: true));
    }

    [Fact]
    public void Redaction_drops_user_info_and_secret_looking_query_values_but_keeps_the_rest()
    {
        var redacted = FetchUrl.Redact(new Uri("https://bob:pw@cdn.example.com/v.mp4?X-Amz-Signature=abc&api_key=k1&quality=hd#frag"));

        Assert.Equal("https://cdn.example.com/v.mp4?X-Amz-Signature=REDACTED&api_key=REDACTED&quality=hd", redacted);
        Assert.Equal(["abc", "abc", "k%2B1", "k+1"], FetchUrl.SecretValues(new Uri("https://cdn.example.com/v.mp4?X-Amz-Signature=abc&api_key=k%2B1&quality=hd")).ToArray());
    }
}
