using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// An owned reference to a GObject (a <c>VipsImage</c>, a <c>VipsOperation</c>, …). Releasing the handle
/// drops exactly the one reference it owns, so a leak or a double unref cannot come from the managed side.
/// </summary>
internal class GObjectHandle : SafeHandle
{
    public GObjectHandle()
        : base(nint.Zero, ownsHandle: true)
    {
    }

    public GObjectHandle(nint existingReference)
        : base(nint.Zero, ownsHandle: true)
    {
        SetHandle(existingReference);
    }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        VipsNative.g_object_unref(handle);
        return true;
    }
}

/// <summary>An owned reference to a <c>VipsImage</c>.</summary>
internal sealed class VipsImageHandle : GObjectHandle
{
    public VipsImageHandle()
    {
    }

    public VipsImageHandle(nint existingReference)
        : base(existingReference)
    {
    }
}

/// <summary>An owned reference to a <c>VipsOperation</c>.</summary>
internal sealed class VipsOperationHandle : GObjectHandle
{
    public VipsOperationHandle(nint existingReference)
        : base(existingReference)
    {
    }
}

/// <summary>An owned reference to a <c>VipsArea</c> (a <c>VipsBlob</c>), released with <c>vips_area_unref</c>.</summary>
internal sealed class VipsAreaHandle : SafeHandle
{
    public VipsAreaHandle(nint existingReference)
        : base(nint.Zero, ownsHandle: true)
    {
        SetHandle(existingReference);
    }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        VipsNative.vips_area_unref(handle);
        return true;
    }
}

