using System.Diagnostics;
using System.Text;

namespace Kiln.Media.Transcription;

/// <summary>Where Debian's pocketsphinx 0.8 lives; null model paths use the package's built-in en-US defaults.</summary>
public sealed record PocketsphinxSettings
{
    public string ExecutablePath { get; init; } = "pocketsphinx_continuous";

    public string? HmmPath { get; init; }

    public string? LanguageModelPath { get; init; }

    public string? DictionaryPath { get; init; }
}

/// <summary>
/// Runs <c>pocketsphinx_continuous -infile chunk.wav -time yes</c> on a 16 kHz mono WAV and turns its word times into
/// segments. Its log goes to /dev/null via <c>-logfn</c>: it is megabytes of decoder statistics on stderr.
/// </summary>
public sealed class PocketsphinxRecognizer(PocketsphinxSettings settings)
{
    public async Task<TranscriptText> RecognizeAsync(string wavPath, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(settings.ExecutablePath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "-infile", Path.GetFullPath(wavPath), "-time", "yes", "-logfn", "/dev/null" })
        {
            psi.ArgumentList.Add(arg);
        }

        AddIf(psi, "-hmm", settings.HmmPath);
        AddIf(psi, "-lm", settings.LanguageModelPath);
        AddIf(psi, "-dict", settings.DictionaryPath);
        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new MediaException("media.tool_missing", "pocketsphinx_continuous could not be started.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new MediaException("media.tool_missing", $"pocketsphinx_continuous could not be started ({settings.ExecutablePath}): {e.Message}", inner: e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }

            var text = await stdout;
            var err = await stderr;
            if (process.ExitCode != 0)
            {
                throw new MediaException("media.transcribe_failed", $"pocketsphinx exited with {process.ExitCode}: {Tail(err)}");
            }

            var segments = Segments.FromWords(PocketsphinxOutput.ParseWords(text));
            return new TranscriptText(Segments.JoinText(segments), segments, "en");
        }
    }

    private static void AddIf(ProcessStartInfo psi, string flag, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            psi.ArgumentList.Add(flag);
            psi.ArgumentList.Add(value);
        }
    }

    private static string Tail(string s) => s.Length <= 500 ? s.Trim() : new StringBuilder("…").Append(s.AsSpan(s.Length - 500)).ToString().Trim();
}
