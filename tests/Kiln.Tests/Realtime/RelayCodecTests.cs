using System.Text;
using System.Text.Json.Nodes;
using Kiln.Jobs;
using Kiln.Realtime;

namespace Kiln.Tests.Realtime;

public sealed class RelayCodecTests
{
    [Fact]
    public void Events_round_trip_with_their_type_job_owner_and_payload()
    {
        var owner = Guid.CreateVersion7();
        var progress = JobEvents.Progress(Guid.CreateVersion7(), owner, "encode", 42.5, 1.5, 12, 1000);
        var completed = JobEvents.Completed(Guid.CreateVersion7(), null, new JsonObject { ["bytesSaved"] = 123 });

        var payloads = RelayCodec.EncodeEvents("node-a#1234", [progress, completed], 7900);
        var decoded = RelayCodec.Decode(Assert.Single(payloads))!;

        Assert.Equal("node-a#1234", decoded.Origin);
        Assert.Equal(RelayMessageKind.Events, decoded.Kind);
        Assert.Equal(progress.JobId, decoded.Events[0].JobId);
        Assert.Equal(owner, decoded.Events[0].OwnerId);
        Assert.Equal(progress.Data.ToJsonString(), decoded.Events[0].Data!.ToJsonString());
        Assert.Null(decoded.Events[1].OwnerId);
        Assert.Equal(123, decoded.Events[1].Data!["result"]!["bytesSaved"]!.GetValue<int>());
    }

    [Fact]
    public void Many_events_are_packed_into_as_few_payloads_as_fit_under_the_limit()
    {
        var events = Enumerable.Range(0, 2000).Select(i => JobEvents.Progress(Guid.CreateVersion7(), Guid.CreateVersion7(), "encode", i % 100, null, null, null)).ToList();

        var payloads = RelayCodec.EncodeEvents("node", events, 7900);

        Assert.All(payloads, p => Assert.True(Encoding.UTF8.GetByteCount(p) <= 7900));
        Assert.All(payloads.SkipLast(1), p => Assert.True(p.Length > 7900 - 300, "payloads are filled"));
        Assert.Equal(events.Select(e => e.JobId), payloads.SelectMany(p => RelayCodec.Decode(p)!.Events).Select(e => e.JobId));
    }

    [Fact]
    public void An_event_too_large_for_a_notification_is_sent_by_reference()
    {
        var huge = JobEvents.Completed(Guid.CreateVersion7(), null, new JsonObject { ["text"] = new string('x', 20_000) });

        var payloads = RelayCodec.EncodeEvents("node", [huge], 7900);
        var decoded = RelayCodec.Decode(Assert.Single(payloads))!.Events.Single();

        Assert.True(payloads[0].Length < 300);
        Assert.True(decoded.ByReference);
        Assert.Equal(JobEventType.Completed, decoded.Type);
        Assert.Equal(huge.JobId, decoded.JobId);
    }

    [Fact]
    public void Interest_splits_across_payloads_and_carries_the_watch_everything_flag()
    {
        var jobs = Enumerable.Range(0, 1000).Select(_ => Guid.CreateVersion7()).ToList();

        var payloads = RelayCodec.EncodeInterest("node", jobs, all: true, 7900);
        var decoded = payloads.Select(p => RelayCodec.Decode(p)!).ToList();

        Assert.True(payloads.Count >= 5);
        Assert.All(decoded, d => Assert.Equal(RelayMessageKind.Interest, d.Kind));
        Assert.All(decoded, d => Assert.True(d.InterestAll));
        Assert.Equal(jobs, decoded.SelectMany(d => d.Interest));
        Assert.Empty(RelayCodec.Decode(Assert.Single(RelayCodec.EncodeInterest("node", [], all: true, 7900)))!.Interest);
    }

    [Fact]
    public void Interest_says_whether_the_node_wants_new_jobs_announced()
    {
        var wants = RelayCodec.Decode(Assert.Single(RelayCodec.EncodeInterest("node", [], all: false, 7900, announcements: true)))!;
        var not = RelayCodec.Decode(Assert.Single(RelayCodec.EncodeInterest("node", [], all: false, 7900)))!;

        Assert.True(wants.InterestNew);
        Assert.False(wants.InterestAll);
        Assert.False(not.InterestNew);
    }

    [Fact]
    public void A_payload_starts_with_its_origin_even_for_names_outside_ascii()
    {
        var origin = "nœud-été#ab12";
        var payload = Assert.Single(RelayCodec.EncodeEvents(origin, [JobEvents.Queued(Guid.CreateVersion7(), null)], 7900));

        Assert.StartsWith(RelayCodec.PrefixOf(origin), payload, StringComparison.Ordinal);
        Assert.False(payload.StartsWith(RelayCodec.PrefixOf("nœud-été#ab13"), StringComparison.Ordinal));
        Assert.All(payload, c => Assert.True(c < 128));
        Assert.Equal(origin, RelayCodec.Decode(payload)!.Origin);
        Assert.Equal(RelayMessageKind.Hello, RelayCodec.Decode(RelayCodec.EncodeHello(origin))!.Kind);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"e\":[]}")]
    public void Foreign_or_broken_payloads_decode_to_nothing(string payload) => Assert.Null(RelayCodec.Decode(payload));
}
