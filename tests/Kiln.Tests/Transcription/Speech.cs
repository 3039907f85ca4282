using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Kiln.Tests.Transcription;

/// <summary>Known English speech made with flite, and word recall against what a recogniser returned.</summary>
public static partial class Speech
{
    public const string Sentence = "The quick brown fox jumps over the lazy dog. Please call me tomorrow morning.";

    /// <summary>Speaks <paramref name="text"/> with a flite voice (rms, slt) into a WAV file.</summary>
    public static async Task<string> FliteAsync(string directory, string voice, string text, string name)
    {
        var path = Path.Combine(directory, name);
        await RunAsync("flite", "-voice", voice, "-t", text, "-o", path);
        return path;
    }

    /// <summary>Runs a tool and returns its stdout; fails the test with its stderr when it exits non-zero.</summary>
    public static async Task<string> RunAsync(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, $"{tool} exited {p.ExitCode}: {await stderr}");
        return await stdout;
    }

    public static string[] Words(string text) =>
        [.. NonLetters().Split(text.ToLowerInvariant()).Where(w => w.Length > 0)];

    /// <summary>Share of the expected words found in the recognised ones (each recognised word counts once).</summary>
    public static double Recall(string expected, string recognized)
    {
        var pool = Words(recognized).ToList();
        var want = Words(expected);
        var hits = want.Count(w => pool.Remove(w));
        return (double)hits / want.Length;
    }

    /// <summary>Word error rate: word-level edit distance over the expected length.</summary>
    public static double WordErrorRate(string expected, string recognized)
    {
        var a = Words(expected);
        var b = Words(recognized);
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
        }

        return (double)d[a.Length, b.Length] / a.Length;
    }

    [GeneratedRegex("[^a-z']+", RegexOptions.CultureInvariant)]
    private static partial Regex NonLetters();
}
