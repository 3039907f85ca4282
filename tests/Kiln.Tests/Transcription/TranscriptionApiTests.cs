using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Kiln.Tests.Infrastructure;

namespace Kiln.Tests.Transcription;

/// <summary>
/// audio.transcribe end to end through the API: real pocketsphinx on flite speech and alsa-utils' recorded voice,
/// and the OpenAI-compatible path (chunked) against a local fake for versioning.
/// </summary>
public sealed class TranscriptionApiTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(8);
    private readonly string _dir = Directory.CreateTempSubdirectory("kiln-speech-").FullName;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return ValueTask.CompletedTask;
    }

    [Fact]
    public async Task Pocketsphinx_transcribes_flite_speech_in_wav_mp3_and_a_videos_sound_and_a_recorded_voice()
    {
        var rms = await Speech.FliteAsync(_dir, "rms", Speech.Sentence, "rms.wav");
        var slt = await Speech.FliteAsync(_dir, "slt", "Open the door and turn on the light in the kitchen.", "slt.wav");
        var mp3 = Path.Combine(_dir, "slt.mp3");
        await Speech.RunAsync("ffmpeg", "-nostdin", "-loglevel", "error", "-i", slt, "-c:a", "libmp3lame", "-b:a", "64k", mp3);
        var video = Path.Combine(_dir, "talk.mp4");
        await Speech.RunAsync("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=6", "-i", rms,
            "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", video);
        var cases = new (string Name, string Path, string Expected, double Bar)[]
        {
            ("rms.wav", rms, Speech.Sentence, 0.7),
            ("slt.mp3", mp3, "Open the door and turn on the light in the kitchen.", 0.5),
            ("talk.mp4", video, Speech.Sentence, 0.7),
            ("Front_Center.wav", "/usr/share/sounds/alsa/Front_Center.wav", "front center", 0.5),
        };

        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?> { ["Kiln:Transcription:Provider"] = "pocketsphinx" });
        var body = await server.UploadAsync(cases.Select(c => (c.Name, File.ReadAllBytes(c.Path))));
        var (other, _) = await server.CreateClientKeyAsync("other");
        for (var i = 0; i < cases.Length; i++)
        {
            var asset = body["assets"]![i]!;
            var id = asset["id"]!.GetValue<Guid>();
            var job = asset["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "audio.transcribe")!;
            var done = await server.WaitForJobAsync(job["id"]!.GetValue<Guid>(), ["completed", "failed"], JobTimeout);
            Assert.True(done["state"]!.GetValue<string>() == "completed", done.ToJsonString());
            Assert.Equal("pocketsphinx", done["result"]!["provider"]!.GetValue<string>());

            var t = (await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{id}/transcripts/active?format=json"))!;
            var text = t["text"]!.GetValue<string>();
            var recall = Speech.Recall(cases[i].Expected, text);
            output.WriteLine($"{cases[i].Name}: recall {recall:0.00}, WER {Speech.WordErrorRate(cases[i].Expected, text):0.00}: \"{text}\"");
            Assert.True(recall >= cases[i].Bar, $"{cases[i].Name}: recall {recall:0.00} < {cases[i].Bar}: \"{text}\"");
            Assert.Equal("AUTO", t["version"]!["source"]!.GetValue<string>());

            var duration = done["result"]!["duration"]!.GetValue<double>();
            var last = 0.0;
            foreach (var s in t["segments"]!.AsArray())
            {
                var (start, end) = (s!["start"]!.GetValue<double>(), s["end"]!.GetValue<double>());
                Assert.True(start >= last && end >= start && end <= duration + 0.01, $"segment {s.ToJsonString()} after {last}, duration {duration}");
                last = start;
            }

            Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/assets/{id}/transcripts/active")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/api/assets/{id}/transcripts")).StatusCode);
        }

        // Exports of the first: txt is the text, srt and vtt have one cue per segment, and ffmpeg reads the VTT.
        var first = body["assets"]![0]!["id"]!.GetValue<Guid>();
        var json = (await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{first}/transcripts/active"))!;
        var segments = json["segments"]!.AsArray().Count;
        Assert.Equal(json["text"]!.GetValue<string>() + "\n", await server.Admin.GetStringAsync($"/api/assets/{first}/transcripts/active?format=txt"));
        var srt = await server.Admin.GetStringAsync($"/api/assets/{first}/transcripts/active?format=srt");
        Assert.Equal(segments, srt.Split('\n').Count(l => l.Contains(" --> ", StringComparison.Ordinal)));
        using var vttResponse = await server.Admin.GetAsync($"/api/assets/{first}/transcripts/active?format=vtt");
        Assert.Equal("text/vtt", vttResponse.Content.Headers.ContentType!.MediaType);
        var vtt = Path.Combine(_dir, "active.vtt");
        await File.WriteAllTextAsync(vtt, await vttResponse.Content.ReadAsStringAsync());
        var converted = await Speech.RunAsync("ffmpeg", "-nostdin", "-loglevel", "error", "-i", vtt, "-f", "srt", "pipe:1");
        Assert.Equal(segments, converted.Split('\n').Count(l => l.Contains(" --> ", StringComparison.Ordinal)));
        Assert.Contains("fox", converted, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await server.Admin.GetAsync($"/api/assets/{first}/transcripts/active?format=doc")).StatusCode);
    }

    [Fact]
    public async Task Chunked_openai_runs_stitch_times_and_a_manual_edit_outranks_later_auto_runs_unless_asked()
    {
        await using var fake = await FakeAiServer.StartAsync();
        fake.Default = r => new ScriptedReply(200, $$"""
            {"task":"transcribe","language":"english","duration":2.0,"text":" chunk {{fake.Received.Count}}",
             "segments":[{"id":0,"seek":0,"start":0.25,"end":1.5,"text":" chunk {{fake.Received.Count}}","tokens":[1],"temperature":0.0,"avg_logprob":-0.3,"compression_ratio":1.0,"no_speech_prob":0.01}]}
            """);
        await using var server = await KilnServer.StartAsync(new Dictionary<string, string?>
        {
            ["Kiln:Transcription:Provider"] = "openai",
            ["Kiln:Transcription:OpenAi:BaseUrl"] = fake.BaseUrl + "/v1",
            ["Kiln:Transcription:OpenAi:ApiKey"] = "sk-kiln-test",
            ["Kiln:Transcription:OpenAi:MaxRequestBytes"] = "65536",
        });
        var wav = await Speech.FliteAsync(_dir, "rms", Speech.Sentence, "rms.wav");
        var video = Path.Combine(_dir, "talk.mp4");
        await Speech.RunAsync("ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=6", "-i", wav,
            "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", video);
        var body = await server.UploadAsync([("talk.mp4", await File.ReadAllBytesAsync(video))]);
        var asset = body["assets"]![0]!;
        var id = asset["id"]!.GetValue<Guid>();
        var job = asset["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "audio.transcribe")!;
        var done = await server.WaitForJobAsync(job["id"]!.GetValue<Guid>(), ["completed", "failed"], JobTimeout);
        Assert.True(done["state"]!.GetValue<string>() == "completed", done.ToJsonString());

        // 64 KiB of 16 kHz mono is 2 s: a ~5 s sentence goes out as 3 requests, each ≤ the cap, and comes back on one clock.
        var requests = fake.Received.ToArray();
        Assert.Equal(3, requests.Length);
        Assert.All(requests, r => Assert.True(r.FileBytes <= 65536 && r.Fields["model"] == "whisper-1" && r.Authorization == "Bearer sk-kiln-test"));
        var v1 = (await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{id}/transcripts/active"))!;
        Assert.Equal([0.25, 2.25, 4.25], v1["segments"]!.AsArray().Select(s => s!["start"]!.GetValue<double>()).ToArray());
        Assert.Equal("chunk 1 chunk 2 chunk 3", v1["text"]!.GetValue<string>());
        Assert.Equal(("AUTO", "openai", "whisper-1"), (v1["version"]!["source"]!.GetValue<string>(), v1["version"]!["provider"]!.GetValue<string>(), v1["version"]!["model"]!.GetValue<string>()));

        // A person's edit becomes version 2 and active; activating version 1 goes back; another edit (3) wins again.
        var edit = new { text = "The quick brown fox.", segments = new[] { new { start = 0.1, end = 1.9, text = "The quick brown fox." } } };
        Assert.Equal(2, (await PutAsync(server, id, edit))["version"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/assets/{id}/transcripts/1/activate", null)).StatusCode);
        Assert.Equal(1, await ActiveVersionAsync(server, id));
        Assert.Equal(3, (await PutAsync(server, id, new { text = "Edited again." }))["version"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.OK, (await server.Admin.PostAsync($"/api/assets/{id}/transcripts/2/activate", null)).StatusCode);
        Assert.Equal(2, await ActiveVersionAsync(server, id));

        // A new AUTO run adds version 4 but leaves the MANUAL version 2 active; asked to, version 5 takes over.
        await RerunAsync(server, id, replaceManual: false);
        Assert.Equal(2, await ActiveVersionAsync(server, id));
        await RerunAsync(server, id, replaceManual: true);
        Assert.Equal(5, await ActiveVersionAsync(server, id));
        var versions = (await server.Admin.GetFromJsonAsync<JsonArray>($"/api/assets/{id}/transcripts"))!;
        Assert.Equal(["AUTO", "MANUAL", "MANUAL", "AUTO", "AUTO"], versions.Select(v => v!["source"]!.GetValue<string>()).ToArray());
        Assert.Single(versions, v => v!["isActive"]!.GetValue<bool>());

        // The HLS master carries the active transcript as a WebVTT subtitles rendition that ffprobe opens.
        var hlsJob = asset["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "video.hls")!;
        Assert.Equal("completed", (await server.WaitForJobAsync(hlsJob["id"]!.GetValue<Guid>(), ["completed", "failed"], JobTimeout))["state"]!.GetValue<string>());
        var details = (await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{id}"))!;
        var hlsId = details["derivatives"]!.AsArray().Single(d => d!["type"]!.GetValue<string>() == "HLS")!["id"]!.GetValue<Guid>();
        var master = await server.Admin.GetStringAsync($"/api/files/{hlsId}/download");
        Assert.Contains($"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\"", master, StringComparison.Ordinal);
        Assert.Contains($"URI=\"/api/files/{hlsId}/content/subtitles/index.m3u8\"", master, StringComparison.Ordinal);
        Assert.All(master.Split('\n').Where(l => l.StartsWith("#EXT-X-STREAM-INF", StringComparison.Ordinal)), l => Assert.EndsWith("SUBTITLES=\"subs\"", l, StringComparison.Ordinal));
        var cues = await server.Admin.GetStringAsync($"/api/files/{hlsId}/content/subtitles/active.vtt");
        Assert.Contains("chunk 7", cues, StringComparison.Ordinal);
        var signed = (await (await server.Admin.PostAsync($"/api/files/{hlsId}/signed-url", null)).Content.ReadFromJsonAsync<JsonObject>())!;
        var signedMaster = new Uri(server.BaseAddress, signed["url"]!.GetValue<string>());
        var probe = await Speech.RunAsync("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0", signedMaster.ToString());
        Assert.Contains("h264,video", probe, StringComparison.Ordinal);

        // ffmpeg 5.1's HLS demuxer skips subtitle renditions of a master ("Can't support the subtitle"), so the
        // rendition's own playlist, by the signed reference the master gives, is probed on its own.
        using var anonymous = server.CreateClient();
        var signedText = await anonymous.GetStringAsync(signedMaster);
        var subtitleUri = System.Text.RegularExpressions.Regex.Match(signedText, "TYPE=SUBTITLES.*URI=\"([^\"]+)\"").Groups[1].Value;
        Assert.Contains("sig=", subtitleUri, StringComparison.Ordinal);
        var subtitles = await Speech.RunAsync("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0",
            new Uri(server.BaseAddress, subtitleUri).ToString());
        Assert.Contains("webvtt,subtitle", subtitles, StringComparison.Ordinal);

        // Bad edits and unknown versions are problems with codes, not 500s.
        using var bad = await server.Admin.PutAsJsonAsync($"/api/assets/{id}/transcripts", new { segments = new[] { new { start = 3.0, end = 1.0, text = "x" } } });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("transcript.invalid", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await server.Admin.PostAsync($"/api/assets/{id}/transcripts/9/activate", null)).StatusCode);
    }

    private static async Task<JsonObject> PutAsync(KilnServer server, Guid id, object edit)
    {
        using var response = await server.Admin.PutAsJsonAsync($"/api/assets/{id}/transcripts", edit);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!;
    }

    private static async Task<int> ActiveVersionAsync(KilnServer server, Guid id) =>
        (await server.Admin.GetFromJsonAsync<JsonObject>($"/api/assets/{id}/transcripts/active"))!["version"]!["version"]!.GetValue<int>();

    private static async Task RerunAsync(KilnServer server, Guid id, bool replaceManual)
    {
        var settings = new JsonObject
        {
            ["jobs"] = new JsonArray("audio.transcribe"),
            ["params"] = new JsonObject { ["audio.transcribe"] = new JsonObject { ["replaceManual"] = replaceManual } },
        };
        using var response = await server.Admin.PostAsJsonAsync("/api/batches", new JsonObject { ["assetIds"] = new JsonArray(id), ["settings"] = settings });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var batch = (await response.Content.ReadFromJsonAsync<JsonObject>())!;
        var job = batch["assets"]![0]!["jobs"]!.AsArray().Single(j => j!["kind"]!.GetValue<string>() == "audio.transcribe")!;
        var done = await server.WaitForJobAsync(job["id"]!.GetValue<Guid>(), ["completed", "failed"], JobTimeout);
        Assert.True(done["state"]!.GetValue<string>() == "completed", done.ToJsonString());
    }
}
