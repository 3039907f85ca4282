using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// GLib's <c>GValue</c>: a type id and two 8-byte data words (24 bytes on x64). It is only ever created
/// zeroed on the stack and handed to <c>g_value_init</c>; GLib owns what the data words point to.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct GValue
{
    public nuint GType;
    public ulong Data0;
    public ulong Data1;
}
