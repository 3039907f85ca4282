using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Kiln.Processing;

namespace Kiln.Pipelines;

/// <summary>
/// Reads a job's params with bounds. Params come from clients, so a wrong type or an out-of-range value fails the
/// job at once with <c>params.invalid</c> (not retried) and a message that names the field.
/// </summary>
internal static class JobParams
{
    public static int? Int(this JsonObject p, string name, int min, int max)
    {
        if (p[name] is not { } node)
        {
            return null;
        }

        if (node.GetValueKind() != JsonValueKind.Number || !node.AsValue().TryGetValue<double>(out var value) || value != Math.Floor(value) || value < min || value > max)
        {
            throw Invalid($"{name} must be a whole number from {min} to {max}.");
        }

        return (int)value;
    }

    public static double? Double(this JsonObject p, string name, double min, double max)
    {
        if (p[name] is not { } node)
        {
            return null;
        }

        if (node.GetValueKind() != JsonValueKind.Number || !node.AsValue().TryGetValue<double>(out var value) || value < min || value > max)
        {
            throw Invalid($"{name} must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}.");
        }

        return value;
    }

    public static string? OneOf(this JsonObject p, string name, params string[] allowed)
    {
        if (p[name] is not { } node)
        {
            return null;
        }

        if (node.GetValueKind() != JsonValueKind.String || !allowed.Contains(node.GetValue<string>(), StringComparer.Ordinal))
        {
            throw Invalid($"{name} must be one of {string.Join(", ", allowed)}.");
        }

        return node.GetValue<string>();
    }

    public static bool? Bool(this JsonObject p, string name)
    {
        if (p[name] is not { } node)
        {
            return null;
        }

        return node.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid($"{name} must be true or false."),
        };
    }

    private static JobFailedException Invalid(string message) => new("params.invalid", message);
}

/// <summary>
/// Adapts media progress (Kiln.Media knows nothing of jobs) to the job's reporter. A job's <c>totalBytes</c> is the
/// size of the whole input it works through (docs/realtime.md), the same in every report from the first one on; the
/// bytes a tool has written so far are not a total (HLS showed 0 for its first seconds).
/// </summary>
internal sealed class MediaProgressAdapter(IProgress<JobProgress> target, long? inputBytes) : IProgress<Kiln.Media.MediaProgress>
{
    public static MediaProgressAdapter For(JobContext context) => new(context.Progress, context.InputBytes);

    public void Report(Kiln.Media.MediaProgress value) =>
        target.Report(new JobProgress(value.Percent, value.Stage, value.Speed, value.Eta?.TotalSeconds, inputBytes));
}

internal static class OutputFiles
{
    /// <summary>
    /// Puts the original in the output directory as a hard link (no copy, same file system): used when an
    /// optimizer's output would be larger, so the OPTIMIZED derivative is the original bytes.
    /// </summary>
    public static string LinkOriginal(string inputPath, string outputPath)
    {
        if (!HardLink.TryCreate(outputPath, inputPath))
        {
            File.Copy(inputPath, outputPath, overwrite: true);
        }

        return outputPath;
    }
}

internal static partial class HardLink
{
    public static bool TryCreate(string newPath, string existingPath) => link(existingPath, newPath) == 0;

    [System.Runtime.InteropServices.LibraryImport("libc", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8, SetLastError = true)]
    private static partial int link(string oldpath, string newpath);
}
