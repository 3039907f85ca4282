using Kiln.Media.Vips;

namespace Kiln.Media.Images.Resampling;

/// <summary>
/// Composes 8-bit RGBA rows over white into RGB rows: <c>c·a/255 + 255·(1 − a/255)</c>, rounded.
/// </summary>
/// <remarks>
/// Why not libvips' <c>flatten</c>: in 8.14 it works in float per sample and was 40 % of the CPU of reducing a
/// 2048x1536 RGBA PNG to a 720-wide JPEG. Here it is integer arithmetic (<c>(v + 128 + ((v + 128) >> 8)) >> 8</c>
/// is <c>round(v / 255)</c> for every v up to 65535) inside the pipeline, before the resample.
/// </remarks>
internal sealed unsafe class FlattenRgbaOnWhite(int width) : IRowTransform
{
    public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows)
    {
        for (var y = 0; y < rows; y++)
        {
            var s = input + (y * inputStride);
            var d = output + (y * outputStride);
            for (var x = 0; x < width; x++, s += 4, d += 3)
            {
                var a = (uint)s[3];
                if (a == 255)
                {
                    d[0] = s[0];
                    d[1] = s[1];
                    d[2] = s[2];
                    continue;
                }

                var white = 255 * (255 - a);
                d[0] = Round(s[0] * a + white);
                d[1] = Round(s[1] * a + white);
                d[2] = Round(s[2] * a + white);
            }
        }
    }

    private static byte Round(uint v)
    {
        v += 128;
        return (byte)((v + (v >> 8)) >> 8);
    }
}
