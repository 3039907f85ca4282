using Microsoft.Extensions.Options;

namespace Kiln.Core;

/// <summary>The server cannot start as configured; the message says which setting to change.</summary>
internal sealed class KilnStartupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Turns configuration mistakes into a short message on standard error and exit code 2, instead of a stack trace:
/// an operator fixing a setting needs the key, not the call stack. Anything else is a bug and keeps its trace.
/// </summary>
internal static class StartupErrors
{
    public const int ConfigurationExitCode = 2;

    public static async Task<int> RunAsync(Func<Task<int>> command)
    {
        try
        {
            return await command();
        }
        catch (Exception e) when (Describe(e) is { Count: > 0 } problems)
        {
            await Console.Error.WriteLineAsync("kiln: cannot start with this configuration:");
            foreach (var problem in problems)
            {
                await Console.Error.WriteLineAsync("  - " + problem);
            }

            return ConfigurationExitCode;
        }
    }

    private static List<string> Describe(Exception e) => e switch
    {
        OptionsValidationException v => [.. v.Failures],
        AggregateException a when a.InnerExceptions.All(i => Describe(i).Count > 0) => [.. a.InnerExceptions.SelectMany(Describe)],
        KilnStartupException s => [s.Message],
        InvalidOperationException i when i.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal)
            || i.Message.StartsWith("ConnectionStrings:Kiln", StringComparison.Ordinal) => [i.Message],
        _ => [],
    };
}
