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
    /// Builds an exception from <c>vips_error_buffer()</c> and clears the buffer, so the next failure on any
    /// thread does not repeat this one's text. The buffer is process-wide in libvips; under concurrent failures
    /// a message may carry another call's line too, which is still more useful than no text at all.
    /// </summary>
    internal static VipsException FromBuffer(string what)
    {
        var text = Marshal.PtrToStringUTF8(VipsNative.vips_error_buffer())?.Trim() ?? string.Empty;
        VipsNative.vips_error_clear();
        return new VipsException(text.Length == 0 ? what + " failed" : what + ": " + text);
    }
}
