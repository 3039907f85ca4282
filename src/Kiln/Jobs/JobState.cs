namespace Kiln.Jobs;

/// <summary>The states of DESIGN.md §2, spelled as stored.</summary>
internal static class JobState
{
    public const string Waiting = "waiting";
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Paused = "paused";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static readonly IReadOnlyList<string> All = [Waiting, Queued, Running, Paused, Completed, Failed, Cancelled];

    public static bool IsTerminal(string state) => state is Completed or Failed or Cancelled;
}
