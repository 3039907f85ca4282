using System.Globalization;
using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// One call of a libvips operation through the introspection API, the way pyvips and NetVips call it:
/// <c>vips_operation_new</c>, each argument set as a <see cref="GValue"/> of the type the operation declares,
/// <c>vips_cache_operation_build</c>, outputs read back with <c>g_object_get_property</c>, and finally
/// <c>vips_object_unref_outputs</c> so the operation does not keep its output images alive.
/// </summary>
internal sealed unsafe class VipsOperation : IDisposable
{
    // GParamSpec is { GTypeInstance (8), const char *name (8), GParamFlags flags (4 + 4 padding), GType value_type }.
    private const int ParamSpecValueTypeOffset = 24;

    private readonly string _name;
    private VipsOperationHandle _handle;
    private bool _built;

    private VipsOperation(string name, VipsOperationHandle handle)
    {
        _name = name;
        _handle = handle;
    }

    public static VipsOperation Create(string name)
    {
        VipsRuntime.EnsureInitialized();
        var op = VipsNative.vips_operation_new(name);
        if (op == nint.Zero)
        {
            throw VipsException.FromBuffer("vips_operation_new(" + name + ")");
        }

        return new VipsOperation(name, new VipsOperationHandle(op));
    }

    /// <summary>Runs an operation whose single image output is <c>out</c>.</summary>
    public static VipsImage Run(string name, params ReadOnlySpan<(string Name, object Value)> arguments)
    {
        using var op = Create(name);
        foreach (var (argName, value) in arguments)
        {
            op.Set(argName, value);
        }

        op.Build();
        return op.GetImage("out");
    }

    /// <summary>Sets an input argument. The GValue type comes from the operation's own declaration of the argument.</summary>
    public VipsOperation Set(string name, object value)
    {
        ObjectDisposedException.ThrowIf(_built, this);
        var type = ArgumentType(name);
        GValue gv = default;
        VipsNative.g_value_init(&gv, type);
        try
        {
            Fill(&gv, type, name, value);
            VipsNative.g_object_set_property(_handle.DangerousGetHandle(), name, &gv);
        }
        finally
        {
            VipsNative.g_value_unset(&gv);
        }

        return this;
    }

    /// <summary>
    /// Builds the operation (or takes an identical one from libvips' cache). For lazy operations this only
    /// sets up the pipeline; sinks such as savers and statistics compute pixels here.
    /// </summary>
    public void Build()
    {
        ObjectDisposedException.ThrowIf(_built, this);
        var built = VipsNative.vips_cache_operation_build(_handle.DangerousGetHandle());
        if (built == nint.Zero)
        {
            VipsNative.vips_object_unref_outputs(_handle.DangerousGetHandle());
            throw VipsException.FromBuffer(_name);
        }

        _handle.Dispose();
        _handle = new VipsOperationHandle(built);
        _built = true;
    }

    public VipsImage GetImage(string name)
    {
        var obj = ReadOutput(name, static gv => VipsNative.g_object_ref(VipsNative.g_value_get_object((GValue*)gv)));
        return new VipsImage(new VipsImageHandle(obj));
    }

    /// <summary>Reads an int or double output as a double (statistics declare either).</summary>
    public double GetNumber(string name) => ReadOutput(name, static gv =>
        VipsNative.g_type_fundamental(((GValue*)gv)->GType) == VipsNative.GTypeInt
            ? VipsNative.g_value_get_int((GValue*)gv)
            : VipsNative.g_value_get_double((GValue*)gv));

    /// <summary>Copies a <c>VipsBlob</c> output (an encoded buffer) into managed memory.</summary>
    public byte[] GetBlob(string name) => ReadOutput(name, static gv =>
    {
        var area = VipsNative.g_value_get_boxed((GValue*)gv);
        var data = VipsNative.vips_blob_get(area, out var length);
        return new ReadOnlySpan<byte>(data, checked((int)length)).ToArray();
    });

    public void Dispose()
    {
        if (_built && !_handle.IsClosed)
        {
            VipsNative.vips_object_unref_outputs(_handle.DangerousGetHandle());
        }

        _handle.Dispose();
    }

    private T ReadOutput<T>(string name, Func<nint, T> read)
    {
        if (!_built)
        {
            throw new InvalidOperationException(_name + ": outputs can be read only after Build().");
        }

        var type = ArgumentType(name);
        GValue gv = default;
        VipsNative.g_value_init(&gv, type);
        try
        {
            VipsNative.g_object_get_property(_handle.DangerousGetHandle(), name, &gv);
            return read((nint)(&gv));
        }
        finally
        {
            VipsNative.g_value_unset(&gv);
        }
    }

    private nuint ArgumentType(string name)
    {
        if (VipsNative.vips_object_get_argument(_handle.DangerousGetHandle(), name, out var pspec, out _, out _) != 0)
        {
            throw VipsException.FromBuffer(_name + "." + name);
        }

        return *(nuint*)(pspec + ParamSpecValueTypeOffset);
    }

    private void Fill(GValue* gv, nuint type, string name, object value)
    {
        var fundamental = VipsNative.g_type_fundamental(type);
        switch (fundamental)
        {
            case VipsNative.GTypeBoolean:
                VipsNative.g_value_set_boolean(gv, (bool)value ? 1 : 0);
                return;
            case VipsNative.GTypeInt:
                VipsNative.g_value_set_int(gv, Convert.ToInt32(value, CultureInfo.InvariantCulture));
                return;
            case VipsNative.GTypeUInt64:
                VipsNative.g_value_set_uint64(gv, Convert.ToUInt64(value, CultureInfo.InvariantCulture));
                return;
            case VipsNative.GTypeDouble:
                VipsNative.g_value_set_double(gv, Convert.ToDouble(value, CultureInfo.InvariantCulture));
                return;
            case VipsNative.GTypeString:
                VipsNative.g_value_set_string(gv, (string)value);
                return;
            case VipsNative.GTypeEnum:
                VipsNative.g_value_set_enum(gv, value is string nick ? EnumFromNick(type, nick) : Convert.ToInt32(value, CultureInfo.InvariantCulture));
                return;
            case VipsNative.GTypeFlags:
                VipsNative.g_value_set_flags(gv, value is string flags ? (uint)FlagsFromNick(type, flags) : Convert.ToUInt32(value, CultureInfo.InvariantCulture));
                return;
            case VipsNative.GTypeObject when value is VipsImage image:
                SetObject(gv, image);
                return;
            case VipsNative.GTypeBoxed:
                FillBoxed(gv, type, name, value);
                return;
            default:
                throw new ArgumentException($"{_name}.{name}: cannot pass a {value.GetType().Name} as GType {type}.", nameof(value));
        }
    }

    private void FillBoxed(GValue* gv, nuint type, string name, object value)
    {
        if (type == VipsNative.vips_array_double_get_type() && value is double[] doubles)
        {
            fixed (double* p = doubles)
            {
                VipsNative.vips_value_set_array_double(gv, p, doubles.Length);
            }
        }
        else if (type == VipsNative.vips_array_int_get_type() && value is int[] ints)
        {
            fixed (int* p = ints)
            {
                VipsNative.vips_value_set_array_int(gv, p, ints.Length);
            }
        }
        else if (type == VipsNative.vips_array_image_get_type() && value is VipsImage[] images)
        {
            VipsNative.vips_value_set_array_image(gv, images.Length);
            var slots = VipsNative.vips_value_get_array_image(gv, out _);
            for (var i = 0; i < images.Length; i++)
            {
                // The array owns one reference per element and drops them when the GValue is unset.
                slots[i] = VipsNative.g_object_ref(images[i].Handle.DangerousGetHandle());
            }
        }
        else if (type == VipsNative.vips_blob_get_type() && value is VipsAreaHandle blobHandle)
        {
            VipsNative.g_value_set_boxed(gv, blobHandle.DangerousGetHandle());
        }
        else if (type == VipsNative.vips_blob_get_type() && value is ReadOnlyMemory<byte> bytes)
        {
            using var area = CopyToBlob(bytes.Span);
            VipsNative.g_value_set_boxed(gv, area.DangerousGetHandle());
        }
        else
        {
            throw new ArgumentException($"{_name}.{name}: unsupported boxed value {value.GetType().Name}.", nameof(value));
        }
    }

    /// <summary>
    /// Copies bytes into a libvips-owned blob. A lazily loaded image may read its buffer long after the call that
    /// set it returns, so pinning a managed buffer instead would tie its lifetime to every image derived from it.
    /// Pass the returned handle to several loaders to copy only once.
    /// </summary>
    public static VipsAreaHandle CopyToBlob(ReadOnlySpan<byte> bytes)
    {
        VipsRuntime.EnsureInitialized();
        fixed (byte* p = bytes)
        {
            return new VipsAreaHandle(VipsNative.vips_blob_copy(p, (nuint)bytes.Length));
        }
    }

    private static void SetObject(GValue* gv, VipsImage image)
    {
        var added = false;
        image.Handle.DangerousAddRef(ref added);
        try
        {
            VipsNative.g_value_set_object(gv, image.Handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                image.Handle.DangerousRelease();
            }
        }
    }

    private int EnumFromNick(nuint type, string nick)
    {
        var v = VipsNative.vips_enum_from_nick(_name, type, nick);
        return v < 0 ? throw VipsException.FromBuffer(_name) : v;
    }

    private int FlagsFromNick(nuint type, string nick)
    {
        var v = VipsNative.vips_flags_from_nick(_name, type, nick);
        return v < 0 ? throw VipsException.FromBuffer(_name) : v;
    }

    internal static string? PtrToString(nint p) => p == nint.Zero ? null : Marshal.PtrToStringUTF8(p);
}
