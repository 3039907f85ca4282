using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Kiln.Tests.Api.Support;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Hosting;

/// <summary>HTTPS from a configured certificate; compression for what Kiln writes, never for stored media.</summary>
public sealed class HttpsCompressionTests
{
    [Fact]
    public async Task A_configured_certificate_serves_https_with_that_certificate()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=kiln.test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var dir = Directory.CreateTempSubdirectory("kiln-tls-").FullName;
        try
        {
            var pfx = Path.Combine(dir, "kiln.pfx");
            await File.WriteAllBytesAsync(pfx, cert.Export(X509ContentType.Pfx, "secret"));
            await using var server = await TestJobs.StartServerAsync(new Dictionary<string, string?>
            {
                ["urls"] = "https://127.0.0.1:0",
                ["Kestrel:Certificates:Default:Path"] = pfx,
                ["Kestrel:Certificates:Default:Password"] = "secret",
            });
            Assert.Equal("https", server.BaseAddress.Scheme);

            X509Certificate2? presented = null;
            using var handler = new HttpClientHandler
            {
                ServerCertificateCustomValidationCallback = (_, c, _, _) =>
                {
                    presented = c is null ? null : X509CertificateLoader.LoadCertificate(c.RawData);
                    return true;
                },
            };
            using var client = new HttpClient(handler) { BaseAddress = server.BaseAddress };
            using var response = await client.GetAsync("/health/live");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(cert.Thumbprint, presented!.Thumbprint);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Json_is_compressed_but_downloads_and_ranges_are_sent_as_stored()
    {
        await using var server = await TestJobs.StartServerAsync();
        var (asset, jobs) = await TestJobs.UploadAsync(server, server.Admin, [TestJobs.Output]);
        await server.WaitForJobAsync(jobs[TestJobs.Output], ["completed"]);

        // No automatic decompression: the test sees what went over the wire.
        using var client = new HttpClient { BaseAddress = server.BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", server.AdminKey);
        client.DefaultRequestHeaders.AcceptEncoding.ParseAdd("gzip, br");

        using (var json = await client.GetAsync($"/api/assets/{asset}"))
        {
            Assert.Equal(HttpStatusCode.OK, json.StatusCode);
            Assert.Contains(json.Content.Headers.ContentEncoding, e => e is "br" or "gzip");
        }

        // A stored text file (text/plain, a type that is compressed when Kiln writes it) is still sent as stored:
        // downloads offer byte ranges, and compressed bytes would not match them.
        var details = await server.Admin.GetJsonAsync($"/api/assets/{asset}");
        var derivative = details["derivatives"]![0]!["id"]!.GetValue<Guid>();
        var url = $"/api/files/{derivative}/content/parts/part1.txt";
        using (var download = await client.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.OK, download.StatusCode);
            Assert.Equal("text/plain", download.Content.Headers.ContentType!.MediaType);
            Assert.Empty(download.Content.Headers.ContentEncoding);
            Assert.Equal("part one", await download.Content.ReadAsStringAsync());
        }

        using var ranged = new HttpRequestMessage(HttpMethod.Get, url);
        ranged.Headers.Range = new RangeHeaderValue(5, 7);
        using (var part = await client.SendAsync(ranged))
        {
            Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
            Assert.Empty(part.Content.Headers.ContentEncoding);
            Assert.Equal("one", await part.Content.ReadAsStringAsync());
        }
    }
}
