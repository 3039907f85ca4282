namespace Kiln.Media.Vips;

/// <summary>Reads a libvips blob in place, holding its own reference to it until disposed.</summary>
internal sealed unsafe class VipsBlobStream : UnmanagedMemoryStream
{
    private nint area;

    private VipsBlobStream(nint area, byte* data, long length)
        : base(data, length)
    {
        this.area = area;
    }

    public static VipsBlobStream Open(VipsAreaHandle blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        var area = VipsNative.vips_area_copy(blob.DangerousGetHandle());
        var data = VipsNative.vips_blob_get(area, out var length);
        return new VipsBlobStream(area, (byte*)data, (long)length);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        var owned = Interlocked.Exchange(ref area, nint.Zero);
        if (owned != nint.Zero)
        {
            VipsNative.vips_area_unref(owned);
        }
    }
}
