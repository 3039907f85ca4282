using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Prometheus;

namespace Kiln.Observability;

/// <summary>
/// Kiln's metrics, kept in prometheus-net collectors. Each instance owns its own registry (not prometheus-net's static
/// default) because tests run several servers in one process and each must report only its own counts. The method
/// surface predates the library (label sets travel as Prometheus label strings from <see cref="Labels"/>), so callers
/// throughout the code did not change.
/// </summary>
internal sealed class KilnMetrics
{
    private static readonly double[] DurationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

    private readonly MetricFactory _factory;
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Histogram> _histograms = new(StringComparer.Ordinal);

    // Label strings are parsed once: the queue records metrics for every job it starts and finishes.
    private static readonly ConcurrentDictionary<string, (string[] Names, string[] Values)> ParsedLabels = new(StringComparer.Ordinal);

    private readonly Histogram _queueWait;
    private readonly Counter _finished;
    private readonly Histogram _duration;
    private readonly Counter _failures;
    private readonly Counter _optimizeIn;
    private readonly Counter _optimizeOut;
    private readonly Counter _saved;
    private readonly Counter _http;
    private readonly Histogram _httpDuration;

    public KilnMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        _factory = Metrics.WithCustomRegistry(Registry);

        // Process and runtime metrics: process_cpu_seconds_total, process_working_set_bytes, open handles, threads,
        // start time, dotnet_collection_count_total, dotnet_total_memory_bytes. Read when scraped, so they cost
        // nothing in between (the library's meter adapter polls in the background instead, on a box short of CPU).
        DotNetStats.Register(Registry);
        var rss = _factory.CreateGauge("process_resident_memory_bytes", "Resident memory size in bytes.");
        Registry.AddBeforeCollectCallback(() => rss.Set(Environment.WorkingSet));

        _queueWait = Histogram("kiln_job_queue_wait_seconds", "Time from run_at to lease.", "queue", "kind");
        _finished = Counter("kiln_jobs_finished_total", "Jobs that finished an attempt, by outcome.", "queue", "kind", "outcome");
        _duration = Histogram("kiln_job_duration_seconds", "Run time of job attempts.", "queue", "kind", "outcome");
        _failures = Counter("kiln_job_failures_total", "Failed or retried job attempts, by error code.", "queue", "kind", "code");
        _optimizeIn = Counter("kiln_optimize_input_bytes_total", "Bytes given to optimizers.", "kind");
        _optimizeOut = Counter("kiln_optimize_output_bytes_total", "Bytes written by optimizers.", "kind");
        _saved = Counter("kiln_bytes_saved_total", "Bytes saved by optimizers.", "kind");
        _http = Counter("kiln_http_requests_total", "HTTP requests served.", "method", "route", "status");
        _httpDuration = Histogram("kiln_http_request_duration_seconds", "HTTP request duration.", "method", "route");
    }

    /// <summary>What /metrics exports.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>A gauge in this registry; set by whoever owns the value (or from a before-collect callback).</summary>
    public Gauge Gauge(string name, string help, params string[] labelNames) =>
        _factory.CreateGauge(name, help, new GaugeConfiguration { LabelNames = labelNames });

    public void JobStarted(string queue, string kind, double waitSeconds) =>
        _queueWait.WithLabels(queue, kind).Observe(Math.Max(0, waitSeconds));

    /// <summary>
    /// One attempt ended. <paramref name="errorCode"/> (for <c>failed</c> and <c>retried</c>) feeds failures by code:
    /// the error code of the report, or <c>stalled</c>/<c>lease_expired</c> when the queue gave up on the attempt.
    /// </summary>
    public void JobFinished(string queue, string kind, string outcome, double? durationSeconds, string? errorCode = null)
    {
        _finished.WithLabels(queue, kind, outcome).Inc();
        if (durationSeconds is double d)
        {
            _duration.WithLabels(queue, kind, outcome).Observe(Math.Max(0, d));
        }

        if (outcome != "completed")
        {
            _failures.WithLabels(queue, kind, errorCode ?? "unknown").Inc();
        }
    }

    public void BytesSaved(string kind, long originalBytes, long outputBytes)
    {
        _optimizeIn.WithLabels(kind).Inc(originalBytes);
        _optimizeOut.WithLabels(kind).Inc(outputBytes);
        _saved.WithLabels(kind).Inc(Math.Max(0, originalBytes - outputBytes));
    }

    public void HttpRequest(string method, string route, int status, double seconds)
    {
        _http.WithLabels(method, route, status.ToString(CultureInfo.InvariantCulture)).Inc();
        _httpDuration.WithLabels(method, route).Observe(seconds);
    }

    /// <summary>Counts a message or request refused for being invalid (protocol violations, stale leases).</summary>
    public void Rejected(string source, string reason) =>
        Increment("kiln_rejected_messages_total", "Messages refused by validation.", Labels(("source", source), ("reason", reason)));

    /// <summary>Adds to a counter named at the call site; <paramref name="labels"/> comes from <see cref="Labels"/>.</summary>
    public void Increment(string name, string help, string labels, double by = 1)
    {
        var (names, values) = Parse(labels);
        _counters.GetOrAdd(name, static (n, a) => a.Self.Counter(n, a.Help, a.Names), (Self: this, Help: help, Names: names))
            .WithLabels(values).Inc(by);
    }

    public void Observe(string name, string help, string labels, double value)
    {
        var (names, values) = Parse(labels);
        _histograms.GetOrAdd(name, static (n, a) => a.Self.Histogram(n, a.Help, a.Names), (Self: this, Help: help, Names: names))
            .WithLabels(values).Observe(value);
    }

    public double CounterValue(string name, string labels) =>
        _counters.TryGetValue(name, out var counter) ? counter.WithLabels(Parse(labels).Values).Value : 0;

    /// <summary>A label set as Prometheus writes it: <c>{name="value",…}</c>.</summary>
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

    public static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    private Counter Counter(string name, string help, params string[] labelNames) =>
        _factory.CreateCounter(name, help, new CounterConfiguration { LabelNames = labelNames });

    private Histogram Histogram(string name, string help, params string[] labelNames) =>
        _factory.CreateHistogram(name, help, new HistogramConfiguration { LabelNames = labelNames, Buckets = DurationBuckets });

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Reads back what <see cref="Labels"/> wrote.</summary>
    private static (string[] Names, string[] Values) Parse(string labels) => ParsedLabels.GetOrAdd(labels, static text =>
    {
        var names = new List<string>();
        var values = new List<string>();
        var i = 1;
        while (i < text.Length - 1)
        {
            var eq = text.IndexOf('=', i);
            names.Add(text[i..eq]);
            var value = new StringBuilder();
            for (i = eq + 2; text[i] != '"'; i++)
            {
                if (text[i] == '\\')
                {
                    i++;
                    value.Append(text[i] == 'n' ? '\n' : text[i]);
                }
                else
                {
                    value.Append(text[i]);
                }
            }

            values.Add(value.ToString());
            i += 2; // the closing quote and the comma (or the closing brace)
        }

        return ([.. names], [.. values]);
    });
}
