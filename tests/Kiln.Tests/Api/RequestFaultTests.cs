using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;
using Kiln.Tests.Queue;

namespace Kiln.Tests.Api;

/// <summary>Bad, slow or unlucky requests get a problem with a stable code, never a 500.</summary>
public sealed class RequestFaultTests : IAsyncLifetime
{
    private KilnServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await KilnServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\nabcdef")]
    [InlineData("this is not multipart at all, just garbage bytes \u0001\u0002")]
    [InlineData("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\nabc\r\n--b")]
    public async Task A_malformed_multipart_body_is_400_and_leaves_no_part_file(string body)
    {
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=b");
        using var response = await _server.Admin.PostAsync("/api/uploads", content, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("upload.", await CodeAsync(response), StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_server.DataDirectory, "tmp", "uploads")));
    }

    [Fact]
    public async Task An_empty_filename_is_stored_as_upload()
    {
        const string body = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\nsome bytes\r\n--b--\r\n";
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=b");
        using var response = await _server.Admin.PostAsync("/api/uploads", content, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var asset = (await response.Content.ReadFromJsonAsync<JsonObject>(TestContext.Current.CancellationToken))!["assets"]![0]!;
        Assert.Equal("upload", asset["name"]!.GetValue<string>());
        var details = await _server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{asset["id"]}", TestContext.Current.CancellationToken);
        Assert.Equal("upload", details!["asset"]!["originalName"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("/api/jobs?page=2147483647&pageSize=500", "jobs.bad_page")]
    [InlineData("/api/jobs?page=4294969&pageSize=500", "jobs.bad_page")]
    [InlineData("/api/assets?page=2147483647&pageSize=500", "assets.bad_page")]
    [InlineData("/api/assets?page=4294969&pageSize=500", "assets.bad_page")]
    public async Task A_page_past_the_largest_offset_is_400(string url, string code)
    {
        using var response = await _server.Admin.GetAsync(url, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(code, await CodeAsync(response));
    }

    [Fact]
    public async Task The_last_page_that_fits_still_answers_200()
    {
        // (4294968 - 1) * 500 = 2,147,483,500 fits in an int (4294969 would not): a real, empty page.
        using var response = await _server.Admin.GetAsync("/api/assets?page=4294968&pageSize=500", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Uploads_are_refused_with_507_while_the_disk_is_below_its_free_space_minimum()
    {
        // Not a full disk: the same threshold the readiness check uses, set above any real disk's free space.
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:MinFreeDiskBytes"] = long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        using var form = new MultipartFormDataContent { { new ByteArrayContent([1, 2, 3]), "file", "x.bin" } };
        using var response = await server.Admin.PostAsync("/api/uploads", form, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.InsufficientStorage, response.StatusCode);
        Assert.Equal("storage.full", await CodeAsync(response));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(server.DataDirectory, "tmp", "uploads")));
    }

    [Fact]
    public async Task An_upload_that_stalls_is_answered_408_and_its_part_file_removed()
    {
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Uploads:MinBytesPerSecond"] = "100000",
            ["Kiln:Uploads:MinRateGraceSeconds"] = "2",
        });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.BaseAddress.Host, server.BaseAddress.Port, TestContext.Current.CancellationToken);
        var stream = tcp.GetStream();
        var head = "POST /api/uploads HTTP/1.1\r\nHost: localhost\r\n"
            + $"Authorization: Bearer {server.AdminKey}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000\r\n\r\n"
            + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.bin\"\r\n\r\nfirst bytes";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), TestContext.Current.CancellationToken);

        // Nothing more is sent; Kestrel's data-rate check cuts the body after the grace period.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        var answer = new StringBuilder();
        var buffer = new byte[4096];
        while (!answer.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }

        Assert.StartsWith("HTTP/1.1 408", answer.ToString(), StringComparison.Ordinal);
        await Poll.UntilAsync(() => Task.FromResult(!Directory.EnumerateFiles(Path.Combine(server.DataDirectory, "tmp", "uploads")).Any()), "the partial upload to be removed", 60);
    }

    private static async Task<string> CodeAsync(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonObject>())!["errorCode"]!.GetValue<string>();
}
