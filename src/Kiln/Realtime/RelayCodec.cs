using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Jobs;

namespace Kiln.Realtime;

/// <summary>What one relay NOTIFY carries.</summary>
internal enum RelayMessageKind
{
    /// <summary><c>{"o":origin,"e":[{"t":type,"j":jobId,"w":owner,"d":data}|{"t","j","w","r":1}…]}</c>; <c>r</c> marks an event too large to carry, read back from the job row.</summary>
    Events,

    /// <summary><c>{"o":origin,"i":[jobId…],"a":bool}</c>: the origin's hub clients watch these jobs (<c>a</c>: every job).</summary>
    Interest,

    /// <summary><c>{"o":origin,"h":1}</c>: a node started and asks the others to repeat their interest.</summary>
    Hello,
}

internal sealed record RelayedEvent(string Type, Guid JobId, Guid? OwnerId, JsonObject? Data)
{
    /// <summary>The event was too large for a NOTIFY: the receiver rebuilds it from the job row.</summary>
    public bool ByReference => Data is null;
}

internal sealed record RelayMessage(
    string Origin,
    RelayMessageKind Kind,
    IReadOnlyList<RelayedEvent> Events,
    IReadOnlyList<Guid> Interest,
    bool InterestAll,
    bool InterestNew = false);

/// <summary>
/// Encodes job events and watch interest into NOTIFY payloads under PostgreSQL's 8000-byte limit, and decodes
/// them. Payloads are ASCII JSON (the writer escapes everything else), so characters and bytes count the same.
/// Every payload starts with its origin (<see cref="PrefixOf"/>), so a node skips its own without parsing them.
/// </summary>
internal static class RelayCodec
{
    private const string OriginPrefix = "{\"o\":";

    public static List<string> EncodeEvents(string origin, IEnumerable<JobEvent> events, int maxBytes)
    {
        var header = OriginPrefix + Quote(origin) + ",\"e\":[";
        var items = events.Select(e =>
        {
            var full = EncodeEvent(e, byReference: false);
            return header.Length + full.Length + 2 <= maxBytes ? full : EncodeEvent(e, byReference: true);
        });
        return Pack(header, "]}", items, maxBytes);
    }

    public static List<string> EncodeInterest(string origin, IEnumerable<Guid> jobs, bool all, int maxBytes, bool announcements = false)
    {
        // "n": the node wants new jobs announced (join-new) even when it follows neither them nor everything.
        var header = OriginPrefix + Quote(origin) + ",\"a\":" + (all ? "true" : "false") + (announcements ? ",\"n\":true" : "") + ",\"i\":[";
        var payloads = Pack(header, "]}", jobs.Select(j => "\"" + j.ToString("D") + "\""), maxBytes);
        return payloads.Count > 0 ? payloads : [header + "]}"];
    }

    public static string EncodeHello(string origin) => OriginPrefix + Quote(origin) + ",\"h\":1}";

    /// <summary>The start every payload of this origin has: lets a node skip its own notifications without parsing them.</summary>
    public static string PrefixOf(string origin) => OriginPrefix + Quote(origin) + ",";

    public static RelayMessage? Decode(string payload)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(payload) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException)
        {
            return null;
        }

        if (root["o"] is not JsonValue originValue || !originValue.TryGetValue<string>(out var origin))
        {
            return null;
        }

        if (root["h"] is not null)
        {
            return new RelayMessage(origin, RelayMessageKind.Hello, [], [], false);
        }

        if (root["i"] is JsonArray interest)
        {
            var ids = interest.Select(i => i is JsonValue v && v.TryGetValue<Guid>(out var id) ? id : Guid.Empty).Where(id => id != Guid.Empty).ToList();
            var all = root["a"] is JsonValue a && a.TryGetValue<bool>(out var b) && b;
            var announcements = root["n"] is JsonValue n && n.TryGetValue<bool>(out var wantsNew) && wantsNew;
            return new RelayMessage(origin, RelayMessageKind.Interest, [], ids, all, announcements);
        }

        if (root["e"] is not JsonArray array)
        {
            return null;
        }

        var events = new List<RelayedEvent>(array.Count);
        foreach (var node in array)
        {
            if (node is not JsonObject e
                || e["t"] is not JsonValue t || !t.TryGetValue<string>(out var type)
                || e["j"] is not JsonValue j || !j.TryGetValue<Guid>(out var jobId))
            {
                continue;
            }

            Guid? owner = e["w"] is JsonValue w && w.TryGetValue<Guid>(out var o) ? o : null;
            JsonObject? data = null;
            if (e["d"] is JsonObject d)
            {
                // Detached from the payload so the hub can serialize it on its own.
                e.Remove("d");
                data = d;
            }

            events.Add(new RelayedEvent(type, jobId, owner, data));
        }

        return new RelayMessage(origin, RelayMessageKind.Events, events, [], false);
    }

    private static string EncodeEvent(JobEvent e, bool byReference)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("t", e.Type);
            writer.WriteString("j", e.JobId);
            if (e.OwnerId is { } owner)
            {
                writer.WriteString("w", owner);
            }

            if (byReference)
            {
                writer.WriteNumber("r", 1);
            }
            else
            {
                writer.WritePropertyName("d");
                e.Data.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        return Encoding.ASCII.GetString(buffer.WrittenSpan);
    }

    /// <summary>Joins items into as few payloads as fit: header, items separated by commas, footer.</summary>
    private static List<string> Pack(string header, string footer, IEnumerable<string> items, int maxBytes)
    {
        var payloads = new List<string>();
        var sb = new StringBuilder(header, maxBytes);
        var count = 0;
        foreach (var item in items)
        {
            if (count > 0 && sb.Length + 1 + item.Length + footer.Length > maxBytes)
            {
                payloads.Add(sb.Append(footer).ToString());
                sb.Clear().Append(header);
                count = 0;
            }

            if (count > 0)
            {
                sb.Append(',');
            }

            sb.Append(item);
            count++;
        }

        if (count > 0)
        {
            payloads.Add(sb.Append(footer).ToString());
        }

        return payloads;
    }

    private static string Quote(string value) => JsonSerializer.Serialize(value);

}
