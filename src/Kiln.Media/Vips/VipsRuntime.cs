using System.Globalization;
using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>Process-wide libvips settings, applied once by <see cref="VipsRuntime.Initialize"/>.</summary>
public sealed record VipsSettings
{
    /// <summary>
    /// Worker threads libvips uses for one pipeline. 1 suits a server that already runs several jobs at once
    /// (parallelism comes from the jobs); 0 keeps libvips' default (one per core).
    /// </summary>
    public int Concurrency { get; init; } = 1;

    /// <summary>
    /// Operations kept in libvips' operation cache. Kiln processes each file once, so caching only holds
    /// memory and open files; 0 disables it.
    /// </summary>
    public int CacheMaxOperations { get; init; }

    public long CacheMaxMemoryBytes { get; init; }

    public int CacheMaxFiles { get; init; }

    /// <summary>
    /// Blocks the loaders libvips marks untrusted (ImageMagick, PDF, SVG, FITS, Matrix, raw …): they parse
    /// complex formats with libraries that are not fuzzed for hostile input.
    /// </summary>
    public bool BlockUntrustedLoaders { get; init; } = true;

    /// <summary>
    /// Free heap memory glibc's malloc keeps while images are processed instead of handing it back at every free
    /// (<c>M_TRIM_THRESHOLD</c>, with an eighth of it as <c>M_TOP_PAD</c> and the largest <c>M_MMAP_THRESHOLD</c> glibc
    /// accepts, 32 MiB). With glibc's defaults every image's decode and encode buffers were mapped, faulted in page
    /// by page, zeroed by the kernel and given back again: a fifth of a plain JPEG thumbnail's CPU (docs/benchmarks.md,
    /// "malloc giving memory back at every image"). What is kept goes back when image work pauses
    /// (<see cref="VipsRuntime.ReleaseFreeMemory"/>). 0 leaves glibc's defaults.
    /// </summary>
    public long MallocRetainBytes { get; init; } = 128L << 20;
}

/// <summary>What <see cref="VipsRuntime.Initialize"/> applied; the host logs it at start.</summary>
public sealed record VipsRuntimeInfo(
    string Version,
    int Concurrency,
    int CacheMaxOperations,
    long CacheMaxMemoryBytes,
    int CacheMaxFiles,
    bool UntrustedLoadersBlocked,
    long MallocRetainBytes)
{
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"libvips {Version}: concurrency={Concurrency}, cache max operations={CacheMaxOperations}, cache max memory={CacheMaxMemoryBytes} B, cache max files={CacheMaxFiles}, untrusted loaders blocked={UntrustedLoadersBlocked}, malloc retains={MallocRetainBytes} B");
}

/// <summary>
/// One-time, thread-safe start of libvips. The first call wins: libvips' settings are process-global, so a
/// second caller with other settings would silently change the first one's behaviour; it gets the applied values
/// back instead and can compare.
/// </summary>
public static unsafe class VipsRuntime
{
    // GLogLevelFlags: critical, warning and message; info and debug stay with GLib (off unless G_MESSAGES_DEBUG).
    private const int LogCritical = 1 << 3;
    private const int LogWarning = 1 << 4;
    private const int LogMessage = 1 << 5;

    private static readonly Lock Gate = new();
    private static VipsRuntimeInfo? _applied;

    /// <summary>
    /// libvips' own warnings (for example "VipsJpeg: Premature end of JPEG file" for a damaged upload), which GLib
    /// would otherwise print to stderr outside the host's logs. Raised on the libvips thread that warned.
    /// </summary>
    public static event Action<VipsLogLevel, string>? Logged;

    /// <summary>The settings in force, or null before the first call.</summary>
    public static VipsRuntimeInfo? Applied => Volatile.Read(ref _applied);

    public static VipsRuntimeInfo Initialize(VipsSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.Concurrency);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.CacheMaxOperations);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.CacheMaxMemoryBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.CacheMaxFiles);
        ArgumentOutOfRangeException.ThrowIfNegative(settings.MallocRetainBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(settings.MallocRetainBytes, int.MaxValue);

        lock (Gate)
        {
            if (_applied is not null)
            {
                return _applied;
            }

            if (VipsNative.vips_init("kiln") != 0)
            {
                throw VipsException.FromBuffer("vips_init");
            }

            // Leak checking prints to stderr at exit and costs time on every allocation.
            VipsNative.vips_leak_set(0);
            VipsNative.g_log_set_handler("VIPS", LogCritical | LogWarning | LogMessage, &OnLog, nint.Zero);
            if (settings.Concurrency > 0)
            {
                VipsNative.vips_concurrency_set(settings.Concurrency);
            }

            VipsNative.vips_cache_set_max(settings.CacheMaxOperations);
            VipsNative.vips_cache_set_max_mem((nuint)settings.CacheMaxMemoryBytes);
            VipsNative.vips_cache_set_max_files(settings.CacheMaxFiles);

            // vips_block_untrusted_set exists since libvips 8.13; Debian 12 ships 8.14.
            VipsNative.vips_block_untrusted_set(settings.BlockUntrustedLoaders ? 1 : 0);

            var version = string.Create(
                CultureInfo.InvariantCulture,
                $"{VipsNative.vips_version(0)}.{VipsNative.vips_version(1)}.{VipsNative.vips_version(2)}");
            var info = new VipsRuntimeInfo(
                version,
                VipsNative.vips_concurrency_get(),
                settings.CacheMaxOperations,
                settings.CacheMaxMemoryBytes,
                settings.CacheMaxFiles,
                settings.BlockUntrustedLoaders,
                RetainFreedMemory(settings.MallocRetainBytes));
            Volatile.Write(ref _applied, info);
            return info;
        }
    }

    // glibc's mallopt parameters (malloc.h).
    private const int MallocTrimThreshold = -1;
    private const int MallocTopPad = -2;
    private const int MallocMmapThreshold = -3;

    /// <summary>The largest M_MMAP_THRESHOLD glibc accepts on 64-bit (half its 64 MiB arena heap).</summary>
    private const int MaxMmapThreshold = 32 << 20;

    /// <summary>Applies <see cref="VipsSettings.MallocRetainBytes"/>; what glibc took (0: defaults kept, or not glibc).</summary>
    private static long RetainFreedMemory(long bytes)
    {
        if (bytes == 0)
        {
            return 0;
        }

        try
        {
            var retain = (int)bytes;
            var ok = VipsNative.mallopt(MallocMmapThreshold, Math.Min(retain, MaxMmapThreshold)) == 1
                & VipsNative.mallopt(MallocTrimThreshold, retain) == 1
                & VipsNative.mallopt(MallocTopPad, retain / 8) == 1;
            return ok ? bytes : 0;
        }
        catch (EntryPointNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>
    /// Hands the free pages of every malloc arena back to the system (glibc's <c>malloc_trim</c>). libvips' worker
    /// threads allocate and free large pixel buffers in many arenas, and what they free stays in the process as
    /// fragmented free space; trimming when image work pauses keeps the resident set near what is live. The decode
    /// buffers kept for reuse (<see cref="PixelBufferPool"/>) are freed first. True when the trim gave some memory back.
    /// </summary>
    public static bool ReleaseFreeMemory()
    {
        PixelBufferPool.Shared.Release();
        try
        {
            return VipsNative.malloc_trim(0) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            // Not glibc: nothing to trim.
            return false;
        }
    }

    /// <summary>Starts libvips with default settings when no host called <see cref="Initialize"/> first.</summary>
    internal static void EnsureInitialized()
    {
        if (Volatile.Read(ref _applied) is null)
        {
            Initialize(new VipsSettings());
        }
    }

    [UnmanagedCallersOnly]
    private static void OnLog(nint domain, int level, nint message, nint data)
    {
        var text = Marshal.PtrToStringUTF8(message) ?? string.Empty;
        var kind = (level & LogCritical) != 0 ? VipsLogLevel.Critical : (level & LogWarning) != 0 ? VipsLogLevel.Warning : VipsLogLevel.Message;
        try
        {
            Logged?.Invoke(kind, text);
        }
#pragma warning disable CA1031 // A failing listener must not unwind into libvips' C frames.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}

/// <summary>The GLib level of a libvips log line.</summary>
public enum VipsLogLevel
{
    Message,
    Warning,
    Critical,
}
