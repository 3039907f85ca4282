using System.Runtime.InteropServices;

namespace Kiln.Media.Vips;

/// <summary>
/// The non-variadic part of the libvips, GObject and GLib C APIs that Kiln calls. Variadic functions
/// (<c>vips_thumbnail</c>, <c>vips_image_new_from_file</c>, …) are never declared: their calling convention
/// cannot be expressed safely from C#, so every operation goes through <see cref="VipsOperation"/>.
/// </summary>
internal static unsafe partial class VipsNative
{
    // Sonames, not development symlinks: Debian's libvips42 package ships only these.
    private const string Vips = "libvips.so.42";
    private const string GObject = "libgobject-2.0.so.0";
    private const string GLib = "libglib-2.0.so.0";

    // GLib fundamental type ids are fixed by the ABI (G_TYPE_MAKE_FUNDAMENTAL(n) == n << 2).
    internal const nuint GTypeBoolean = 5 << 2;
    internal const nuint GTypeInt = 6 << 2;
    internal const nuint GTypeUInt64 = 11 << 2;
    internal const nuint GTypeEnum = 12 << 2;
    internal const nuint GTypeFlags = 13 << 2;
    internal const nuint GTypeDouble = 15 << 2;
    internal const nuint GTypeString = 16 << 2;
    internal const nuint GTypeBoxed = 18 << 2;
    internal const nuint GTypeObject = 20 << 2;

    // --- glibc ---

    /// <summary>Returns free memory at the top of, and whole free pages inside, every malloc arena to the system.</summary>
    [LibraryImport("libc")]
    internal static partial int malloc_trim(nuint pad);

    /// <summary>Sets one of glibc malloc's parameters; 1 on success, 0 when glibc refused the value.</summary>
    [LibraryImport("libc")]
    internal static partial int mallopt(int param, int value);

    // --- GLib / GObject ---

    [LibraryImport(GLib)]
    internal static partial void g_free(nint mem);

    [LibraryImport(GObject)]
    internal static partial nint g_object_ref(nint obj);

    [LibraryImport(GObject)]
    internal static partial void g_object_unref(nint obj);

    [LibraryImport(GObject, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void g_object_set_property(nint obj, string name, GValue* value);

    [LibraryImport(GObject, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void g_object_get_property(nint obj, string name, GValue* value);

    [LibraryImport(GObject)]
    internal static partial GValue* g_value_init(GValue* value, nuint gtype);

    [LibraryImport(GObject)]
    internal static partial void g_value_unset(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_boolean(GValue* value, int v);

    [LibraryImport(GObject)]
    internal static partial int g_value_get_boolean(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_int(GValue* value, int v);

    [LibraryImport(GObject)]
    internal static partial int g_value_get_int(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_uint64(GValue* value, ulong v);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_double(GValue* value, double v);

    [LibraryImport(GObject)]
    internal static partial double g_value_get_double(GValue* value);

    [LibraryImport(GObject, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void g_value_set_string(GValue* value, string v);

    [LibraryImport(GObject)]
    internal static partial nint g_value_get_string(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_enum(GValue* value, int v);

    [LibraryImport(GObject)]
    internal static partial int g_value_get_enum(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_flags(GValue* value, uint v);

    [LibraryImport(GObject)]
    internal static partial uint g_value_get_flags(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_object(GValue* value, nint obj);

    [LibraryImport(GObject)]
    internal static partial nint g_value_get_object(GValue* value);

    [LibraryImport(GObject)]
    internal static partial void g_value_set_boxed(GValue* value, nint boxed);

    [LibraryImport(GObject)]
    internal static partial nint g_value_get_boxed(GValue* value);

    [LibraryImport(GObject)]
    internal static partial nuint g_type_fundamental(nuint gtype);

    // --- libvips: runtime ---

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int vips_init(string argv0);

    [LibraryImport(Vips)]
    internal static partial int vips_version(int flag);

    [LibraryImport(Vips)]
    internal static partial void vips_concurrency_set(int concurrency);

    [LibraryImport(Vips)]
    internal static partial int vips_concurrency_get();

    [LibraryImport(Vips)]
    internal static partial void vips_cache_set_max(int max);

    [LibraryImport(Vips)]
    internal static partial void vips_cache_set_max_mem(nuint maxMem);

    [LibraryImport(Vips)]
    internal static partial void vips_cache_set_max_files(int maxFiles);

    [LibraryImport(Vips)]
    internal static partial void vips_block_untrusted_set(int state);

    [LibraryImport(Vips)]
    internal static partial void vips_leak_set(int leak);

    [LibraryImport(Vips)]
    internal static partial void vips_error_clear();

    [LibraryImport(Vips)]
    internal static partial nint vips_error_buffer_copy();

    [LibraryImport(GLib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint g_log_set_handler(string domain, int levels, delegate* unmanaged<nint, int, nint, nint, void> handler, nint data);

    // --- libvips: operations and objects ---

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint vips_operation_new(string name);

    [LibraryImport(Vips)]
    internal static partial nint vips_cache_operation_build(nint operation);

    [LibraryImport(Vips)]
    internal static partial void vips_object_unref_outputs(nint obj);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int vips_object_get_argument(
        nint obj, string name, out nint pspec, out nint argumentClass, out nint argumentInstance);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int vips_enum_from_nick(string domain, nuint gtype, string nick);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int vips_flags_from_nick(string domain, nuint gtype, string nick);

    [LibraryImport(Vips)]
    internal static partial nint vips_enum_nick(nuint gtype, int value);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint vips_foreign_find_load(string filename);

    [LibraryImport(Vips)]
    internal static partial nint vips_foreign_find_load_buffer(void* data, nuint size);

    // --- libvips: boxed values ---

    [LibraryImport(Vips)]
    internal static partial nuint vips_array_double_get_type();

    [LibraryImport(Vips)]
    internal static partial nuint vips_array_int_get_type();

    [LibraryImport(Vips)]
    internal static partial nuint vips_array_image_get_type();

    [LibraryImport(Vips)]
    internal static partial nuint vips_blob_get_type();

    [LibraryImport(Vips)]
    internal static partial nuint vips_interpretation_get_type();

    [LibraryImport(Vips)]
    internal static partial void vips_value_set_array_double(GValue* value, double* array, int n);

    [LibraryImport(Vips)]
    internal static partial void vips_value_set_array_int(GValue* value, int* array, int n);

    [LibraryImport(Vips)]
    internal static partial void vips_value_set_array_image(GValue* value, int n);

    [LibraryImport(Vips)]
    internal static partial nint* vips_value_get_array_image(GValue* value, out int n);

    [LibraryImport(Vips)]
    internal static partial nint vips_blob_copy(void* data, nuint length);

    [LibraryImport(Vips)]
    internal static partial void* vips_blob_get(nint blob, out nuint length);

    [LibraryImport(Vips)]
    internal static partial void vips_area_unref(nint area);

    [LibraryImport(Vips)]
    internal static partial nint vips_area_copy(nint area);

    // --- libvips: image header and memory ---

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_width(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_height(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_bands(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_format(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_interpretation(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_n_pages(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_page_height(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_get_orientation(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_hasalpha(nint image);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nuint vips_image_get_typeof(nint image, string name);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int vips_image_get_string(nint image, string name, out nint value);

    [LibraryImport(Vips, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial void vips_image_set_int(nint image, string name, int value);

    [LibraryImport(Vips)]
    internal static partial void vips_image_set_kill(nint image, int kill);

    [LibraryImport(Vips)]
    internal static partial nint vips_image_new_from_memory_copy(
        void* data, nuint size, int width, int height, int bands, int format);

    [LibraryImport(Vips)]
    internal static partial void* vips_image_write_to_memory(nint image, out nuint size);

    [LibraryImport(Vips)]
    internal static partial nint vips_image_new_from_memory(void* data, nuint size, int width, int height, int bands, int format);

    [LibraryImport(Vips)]
    internal static partial int vips_image_write(nint image, nint output);

    [LibraryImport(Vips)]
    internal static partial nuint vips_format_sizeof(int format);

    /// <summary>Bytes libvips allocated with <c>vips_tracked_malloc</c> (its pixel buffers) and has not freed.</summary>
    [LibraryImport(Vips)]
    internal static partial nuint vips_tracked_get_mem();

    [LibraryImport(Vips)]
    internal static partial nint vips_region_new(nint image);

    // --- libvips: images computed by managed code (VipsRowStage) ---

    [LibraryImport(Vips)]
    internal static partial nint vips_image_new();

    [LibraryImport(Vips)]
    internal static partial int vips_image_pipeline_array(nint image, int hint, nint* inputs);

    [LibraryImport(Vips)]
    internal static partial void vips_image_init_fields(
        nint image, int width, int height, int bands, int format, int coding, int interpretation, double xres, double yres);

    [LibraryImport(Vips)]
    internal static partial double vips_image_get_xres(nint image);

    [LibraryImport(Vips)]
    internal static partial double vips_image_get_yres(nint image);

    [LibraryImport(Vips)]
    internal static partial int vips_image_generate(
        nint image,
        delegate* unmanaged<nint, nint, nint, nint> start,
        delegate* unmanaged<nint, nint, nint, nint, int*, int> generate,
        delegate* unmanaged<nint, nint, nint, int> stop,
        nint a,
        nint b);

    [LibraryImport(Vips)]
    internal static partial int vips_region_prepare(nint region, VipsRect* rect);

    [LibraryImport(Vips)]
    internal static partial int vips_region_width(nint region);

    [LibraryImport(Vips)]
    internal static partial int vips_region_height(nint region);

    // A managed stage's failure message reaches libvips' error buffer as a GError (vips_error itself is variadic).
    [LibraryImport(GLib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint g_quark_from_string(string name);

    [LibraryImport(GLib, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint g_error_new_literal(uint domain, int code, string message);

    [LibraryImport(Vips)]
    internal static partial void vips_g_error(nint* error);

    [LibraryImport(GObject, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nuint g_signal_connect_data(
        nint instance, string signal, delegate* unmanaged<nint, nint, void> handler, nint data, nint destroyData, int flags);
}

/// <summary>libvips' <c>VipsRect</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct VipsRect
{
    public int Left;
    public int Top;
    public int Width;
    public int Height;
}
