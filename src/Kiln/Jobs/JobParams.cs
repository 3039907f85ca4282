using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Kiln.Jobs;

/// <summary>
/// Turns a job's params into the settings its handler runs with. Each kind has exactly one reader, registered in
/// <see cref="JobKindInfo.Params"/>: the planner runs it at enqueue (a bad value is a 400) and the handler runs it
/// again at run time, so what is accepted and what runs can never disagree.
/// </summary>
internal delegate object? JobParamsReader(JobParams p);

/// <summary>One declared param, as a reader asks for it: what the docs table of job kinds is generated from.</summary>
internal sealed record ParamInfo(string Name, string Type, string Allowed, string? Default);

/// <summary>A param that is unknown, missing or out of range: <see cref="Key"/> is its path (e.g. <c>sizes[1].width</c>).</summary>
internal sealed class JobParamsException(string key, string message) : Exception(message)
{
    public string Key { get; } = key;
}

/// <summary>
/// A job's params as one reader sees them. Every typed read both checks the value and records the key, so the keys
/// a kind accepts are exactly the keys its reader reads: there is no second list of names to keep in step, and any
/// other key is refused by name. In describe mode (<see cref="Describe"/>) the reads record what they accept and
/// return their defaults instead.
/// </summary>
internal sealed class JobParams
{
    private readonly JsonObject _json;
    private readonly string _prefix;
    private readonly List<ParamInfo>? _described;
    private readonly List<string> _read = [];

    private JobParams(JsonObject json, string prefix, List<ParamInfo>? described)
    {
        _json = json;
        _prefix = prefix;
        _described = described;
    }

    /// <summary>For kinds that take no params: any key is refused.</summary>
    public static object? None(JobParams p) => null;

    /// <summary>Runs <paramref name="reader"/> on <paramref name="json"/> and refuses keys it did not read.</summary>
    public static T Read<T>(JsonObject? json, Func<JobParams, T> reader)
    {
        var p = new JobParams(json ?? [], "", null);
        var value = reader(p);
        p.RefuseUnread();
        return value;
    }

    /// <summary>Every param <paramref name="reader"/> declares, in the order it reads them.</summary>
    public static IReadOnlyList<ParamInfo> Describe(JobParamsReader reader)
    {
        var described = new List<ParamInfo>();
        reader(new JobParams([], "", described));
        return described;
    }

    public int Int(string name, int min, int max, int fallback) => IntCore(name, min, max, Show(fallback)) ?? fallback;

    /// <summary>An optional whole number; null when absent.</summary>
    public int? OptionalInt(string name, int min, int max) => IntCore(name, min, max, null);

    /// <summary>A whole number the caller cannot do without (e.g. a thumbnail size's width).</summary>
    public int RequiredInt(string name, int min, int max) =>
        IntCore(name, min, max, "required") ?? (Describing ? min : throw Missing(name));

    /// <summary>A whole number from a short list (e.g. waveform bits 8 or 16).</summary>
    public int Int(string name, int[] allowed, int fallback)
    {
        var rule = $"one of {string.Join(", ", allowed)}";
        if (Node(name, "integer", rule, Show(fallback)) is not { } node)
        {
            return fallback;
        }

        return WholeNumber(node) is { } value && allowed.Contains((int)value) ? (int)value : throw Invalid(name, $"must be {rule}", node);
    }

    public double Double(string name, double min, double max, double fallback)
    {
        var rule = $"a number from {Show(min)} to {Show(max)}";
        if (Node(name, "number", $"{Show(min)}–{Show(max)}", Show(fallback)) is not { } node)
        {
            return fallback;
        }

        return node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue<double>(out var value) && value >= min && value <= max
            ? value
            : throw Invalid(name, $"must be {rule}", node);
    }

    public string OneOf(string name, string[] allowed, string fallback) => OneOfCore(name, allowed, fallback) ?? fallback;

    /// <summary>A string from a fixed list; null when absent.</summary>
    public string? OptionalOneOf(string name, string[] allowed) => OneOfCore(name, allowed, null);

    private string? OneOfCore(string name, string[] allowed, string? fallback)
    {
        var rule = string.Join(", ", allowed);
        if (Node(name, "string", rule, fallback) is not { } node)
        {
            return fallback;
        }

        return node.GetValueKind() == JsonValueKind.String && allowed.Contains(node.GetValue<string>(), StringComparer.Ordinal)
            ? node.GetValue<string>()
            : throw Invalid(name, $"must be one of {rule}", node);
    }

    public bool Bool(string name, bool fallback)
    {
        if (Node(name, "boolean", "true, false", Show(fallback)) is not { } node)
        {
            return fallback;
        }

        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid(name, "must be true or false", node),
        };
    }

    /// <summary>An optional string matching <paramref name="pattern"/>, described to clients as <paramref name="rule"/>.</summary>
    public string? OptionalText(string name, Regex pattern, string rule) => TextCore(name, pattern, rule, required: false);

    public string RequiredText(string name, Regex pattern, string rule) =>
        TextCore(name, pattern, rule, required: true) ?? (Describing ? name : throw Missing(name));

    /// <summary>
    /// An optional array of <paramref name="min"/> to <paramref name="max"/> objects, each read by <paramref name="item"/>
    /// with the same checks (its keys are named <c>name[i].key</c>). Null when absent.
    /// </summary>
    public IReadOnlyList<T>? Objects<T>(string name, int min, int max, Func<JobParams, T> item)
    {
        if (Node(name, "array", $"{min}–{max} objects", null) is not { } node)
        {
            if (Describing)
            {
                // The items' own params are part of the kind's declaration: describe them under name[].
                item(new JobParams([], $"{_prefix}{name}[].", _described));
            }

            return null;
        }

        if (node is not JsonArray array || array.Count < min || array.Count > max || array.Any(e => e is not JsonObject))
        {
            throw Invalid(name, $"must be an array of {min} to {max} objects", node);
        }

        var items = new List<T>(array.Count);
        for (var i = 0; i < array.Count; i++)
        {
            var child = new JobParams((JsonObject)array[i]!, $"{_prefix}{name}[{i}].", null);
            items.Add(item(child));
            child.RefuseUnread();
        }

        return items;
    }

    /// <summary>For a reader's own cross-field rule (e.g. unique names): the exception naming <paramref name="name"/>.</summary>
    public JobParamsException Invalid(string name, string reason) => new(_prefix + name, $"param '{_prefix}{name}' {reason}.");

    private bool Describing => _described is not null;

    private int? IntCore(string name, int min, int max, string? shownDefault)
    {
        if (Node(name, "integer", $"{Show(min)}–{Show(max)}", shownDefault) is not { } node)
        {
            return null;
        }

        return WholeNumber(node) is { } value && value >= min && value <= max
            ? (int)value
            : throw Invalid(name, $"must be a whole number from {Show(min)} to {Show(max)}", node);
    }

    private string? TextCore(string name, Regex pattern, string rule, bool required)
    {
        if (Node(name, "string", rule, required ? "required" : null) is not { } node)
        {
            return null;
        }

        return node.GetValueKind() == JsonValueKind.String && pattern.IsMatch(node.GetValue<string>())
            ? node.GetValue<string>()
            : throw Invalid(name, $"must be {rule}", node);
    }

    /// <summary>Records the read (and in describe mode the declaration); the value, or null when absent.</summary>
    private JsonNode? Node(string name, string type, string allowed, string? shownDefault)
    {
        _read.Add(name);
        _described?.Add(new ParamInfo(_prefix + name, type, allowed, shownDefault));
        return Describing ? null : _json[name];
    }

    private void RefuseUnread()
    {
        foreach (var (key, _) in _json)
        {
            if (!_read.Contains(key, StringComparer.Ordinal))
            {
                var known = _read.Count == 0 ? "it takes no params" : "its params are " + string.Join(", ", _read.Distinct(StringComparer.Ordinal));
                throw new JobParamsException(_prefix + key, $"unknown param '{_prefix}{key}'; {known}.");
            }
        }
    }

    private JobParamsException Missing(string name) => new(_prefix + name, $"param '{_prefix}{name}' is required.");

    private JobParamsException Invalid(string name, string reason, JsonNode node)
    {
        var got = node.ToJsonString();
        return Invalid(name, $"{reason} (got {(got.Length > 40 ? got[..40] + "…" : got)})");
    }

    private static double? WholeNumber(JsonNode node) =>
        node.GetValueKind() == JsonValueKind.Number && node.AsValue().TryGetValue<double>(out var value) && value == Math.Floor(value) ? value : null;

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Show(bool value) => value ? "true" : "false";
}
