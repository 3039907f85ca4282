using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Kiln.Observability;

/// <summary>
/// Process-wide counters and histograms rendered in the Prometheus text format. Kept by hand because no Prometheus
/// client package is available here; it covers exactly what /metrics promises and nothing more.
/// </summary>
internal sealed class KilnMetrics
{
    private static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

    // Keyed by (name, labels) rather than their concatenation, and job labels cached: the queue records metrics for
    // every job it starts and finishes, and building label strings was most of what it allocated per job.
    private readonly ConcurrentDictionary<(string Name, string Labels), Counter> _counters = new();
    private readonly ConcurrentDictionary<(string Name, string Labels), Histogram> _histograms = new();
    private readonly ConcurrentDictionary<(string Queue, string Kind, string? Outcome), string> _jobLabels = new();

    public void JobStarted(string queue, string kind, double waitSeconds) =>
        Observe("kiln_job_queue_wait_seconds", "Time from run_at to lease.", JobLabels(queue, kind, null), Math.Max(0, waitSeconds));

    public void JobFinished(string queue, string kind, string outcome, double? durationSeconds)
    {
        var labels = JobLabels(queue, kind, outcome);
        Increment("kiln_jobs_finished_total", "Jobs that finished an attempt, by outcome.", labels);
        if (durationSeconds is double d)
        {
            Observe("kiln_job_duration_seconds", "Run time of job attempts.", labels, Math.Max(0, d));
        }
    }

    public void BytesSaved(string kind, long originalBytes, long outputBytes)
    {
        Increment("kiln_optimize_input_bytes_total", "Bytes given to optimizers.", Labels(("kind", kind)), originalBytes);
        Increment("kiln_optimize_output_bytes_total", "Bytes written by optimizers.", Labels(("kind", kind)), outputBytes);
        Increment("kiln_bytes_saved_total", "Bytes saved by optimizers.", Labels(("kind", kind)), Math.Max(0, originalBytes - outputBytes));
    }

    public void HttpRequest(string method, string route, int status, double seconds)
    {
        var labels = Labels(("method", method), ("route", route), ("status", status.ToString(CultureInfo.InvariantCulture)));
        Increment("kiln_http_requests_total", "HTTP requests served.", labels);
        Observe("kiln_http_request_duration_seconds", "HTTP request duration.", Labels(("method", method), ("route", route)), seconds);
    }

    /// <summary>Counts a message or request refused for being invalid (protocol violations, stale leases).</summary>
    public void Rejected(string source, string reason) =>
        Increment("kiln_rejected_messages_total", "Messages refused by validation.", Labels(("source", source), ("reason", reason)));

    public void Increment(string name, string help, string labels, double by = 1) =>
        _counters.GetOrAdd((name, labels), static (k, help) => new Counter(k.Name, help, k.Labels), help).Add(by);

    public void Observe(string name, string help, string labels, double value) =>
        _histograms.GetOrAdd((name, labels), static (k, help) => new Histogram(k.Name, help, k.Labels, DurationBuckets), help).Observe(value);

    public double CounterValue(string name, string labels) =>
        _counters.TryGetValue((name, labels), out var c) ? c.Value : 0;

    /// <summary>Writes every counter and histogram; gauges read from the database are appended by the endpoint.</summary>
    public void WriteTo(StringBuilder sb)
    {
        foreach (var group in _counters.Values.GroupBy(c => c.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            sb.Append("# HELP ").Append(group.Key).Append(' ').AppendLine(group.First().Help);
            sb.Append("# TYPE ").Append(group.Key).AppendLine(" counter");
            foreach (var c in group)
            {
                sb.Append(c.Name).Append(c.Labels).Append(' ').AppendLine(Format(c.Value));
            }
        }

        foreach (var group in _histograms.Values.GroupBy(h => h.Name).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            sb.Append("# HELP ").Append(group.Key).Append(' ').AppendLine(group.First().Help);
            sb.Append("# TYPE ").Append(group.Key).AppendLine(" histogram");
            foreach (var h in group)
            {
                h.WriteTo(sb);
            }
        }
    }

    public static string Labels(params (string Name, string Value)[] labels)
    {
        var sb = new StringBuilder("{");
        for (var i = 0; i < labels.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(labels[i].Name).Append("=\"").Append(Escape(labels[i].Value)).Append('"');
        }

        return sb.Append('}').ToString();
    }

    private string JobLabels(string queue, string kind, string? outcome) =>
        _jobLabels.TryGetValue((queue, kind, outcome), out var labels)
            ? labels
            : _jobLabels.GetOrAdd((queue, kind, outcome), static k => k.Outcome is null
                ? Labels(("queue", k.Queue), ("kind", k.Kind))
                : Labels(("queue", k.Queue), ("kind", k.Kind), ("outcome", k.Outcome)));

    public static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private sealed class Counter(string name, string help, string labels)
    {
        private double _value;

        public string Name { get; } = name;
        public string Help { get; } = help;
        public string Labels { get; } = labels;
        public double Value => Volatile.Read(ref _value);

        public void Add(double by)
        {
            double initial, computed;
            do
            {
                initial = Volatile.Read(ref _value);
                computed = initial + by;
            }
            while (Interlocked.CompareExchange(ref _value, computed, initial) != initial);
        }
    }

    private sealed class Histogram(string name, string help, string labels, double[] bounds)
    {
        private readonly long[] _buckets = new long[bounds.Length];
        private readonly Lock _gate = new();
        private long _count;
        private double _sum;

        public string Name { get; } = name;
        public string Help { get; } = help;

        public void Observe(double value)
        {
            lock (_gate)
            {
                _count++;
                _sum += value;
                for (var i = 0; i < bounds.Length; i++)
                {
                    if (value <= bounds[i])
                    {
                        _buckets[i]++;
                    }
                }
            }
        }

        public void WriteTo(StringBuilder sb)
        {
            lock (_gate)
            {
                var inner = labels.Length > 2 ? labels[1..^1] + "," : "";
                for (var i = 0; i < bounds.Length; i++)
                {
                    sb.Append(Name).Append("_bucket{").Append(inner).Append("le=\"").Append(Format(bounds[i])).Append("\"} ").AppendLine(_buckets[i].ToString(CultureInfo.InvariantCulture));
                }

                sb.Append(Name).Append("_bucket{").Append(inner).Append("le=\"+Inf\"} ").AppendLine(_count.ToString(CultureInfo.InvariantCulture));
                sb.Append(Name).Append("_sum").Append(labels).Append(' ').AppendLine(Format(_sum));
                sb.Append(Name).Append("_count").Append(labels).Append(' ').AppendLine(_count.ToString(CultureInfo.InvariantCulture));
            }
        }
    }
}
