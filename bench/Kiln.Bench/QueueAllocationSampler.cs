using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Kiln.Bench;

/// <summary>
/// Samples allocations by type from the runtime's GC AllocationTick events (one per ~100 KB allocated), to see what
/// the queue's hot path allocates: <c>queue --alloc-profile</c>.
/// </summary>
internal sealed class QueueAllocationSampler : EventListener
{
    private readonly ConcurrentDictionary<string, long> _bytesByType = new(StringComparer.Ordinal);

    public IReadOnlyList<(string Type, long Bytes)> Top(int count) =>
        [.. _bytesByType.OrderByDescending(kv => kv.Value).Take(count).Select(kv => (kv.Key, kv.Value))];

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, (EventKeywords)0x1);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.Payload is null)
        {
            return;
        }

        var type = eventData.PayloadNames?.IndexOf("TypeName") is int t and >= 0 ? eventData.Payload[t] as string ?? "?" : "?";
        var amount = eventData.PayloadNames?.IndexOf("AllocationAmount") is int a and >= 0 ? Convert.ToInt64(eventData.Payload[a], System.Globalization.CultureInfo.InvariantCulture) : 0;
        _bytesByType.AddOrUpdate(type, amount, (_, v) => v + amount);
    }
}
