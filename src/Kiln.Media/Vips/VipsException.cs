using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>A libvips call failed; the message is libvips' own error buffer at the time of the failure.</summary>
public sealed class VipsException : Exception
{
    public VipsException()
    {
    }

    public VipsException(string message)
        : base(message)
    {
    }

    public VipsException(string message, Exception inner)
        : base(message, inner)
    {
    }

    /// <summary>
    /// Builds an exception from libvips' error buffer and empties it in the same locked step
    /// (<c>vips_error_buffer_copy</c>), so the next failure on any thread does not repeat this one's text. The
    /// buffer is process-wide in libvips; under concurrent failures a message may carry another call's line too,
    /// which is still more useful than no text at all.
    /// </summary>
    internal static VipsException FromBuffer(string what)
    {
        var copy = VipsNative.vips_error_buffer_copy();
        string text;
        try
        {
            text = Marshal.PtrToStringUTF8(copy)?.Trim() ?? string.Empty;
        }
        finally
        {
            VipsNative.g_free(copy);
        }

        return new VipsException(text.Length == 0 ? what + " failed" : what + ": " + text);
    }
}
