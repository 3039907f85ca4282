using Kiln.Media.Vips;

namespace Kiln.Tests.Media.Images;

public sealed unsafe class VipsRowStageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void The_region_layout_of_this_libvips_is_the_expected_one()
    {
        // If this fails after a libvips upgrade, resizing falls back to libvips' own (slower) Lanczos3; fix the offsets.
        Assert.True(VipsRowStage.IsAvailable);
    }

    [Fact]
    public void A_mapped_image_is_computed_by_the_transform_through_a_saver_and_a_crop()
    {
        // 300x200 with a different value in every column, so a wrong offset or stride shows.
        var pixels = new byte[300 * 200 * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)((i / 3 % 300) + (i % 3));
        }

        using var input = VipsImage.FromBytes(pixels, 300, 200, 3);
        using var mapped = VipsRowStage.Map(input, 150, new EveryOtherPixel());
        Assert.Equal((150, 200, 3), (mapped.Width, mapped.Height, mapped.Bands));

        // A saver pulls whole-row strips on libvips' worker threads.
        var whole = mapped.ToBytes(Ct);
        for (var y = 0; y < 200; y += 37)
        {
            for (var x = 0; x < 150; x += 13)
            {
                Assert.Equal(pixels[((y * 300) + (2 * x)) * 3], whole[((y * 150) + x) * 3]);
            }
        }

        // A crop downstream asks for part of each row.
        using var crop = VipsOperation.Run("extract_area", ("input", mapped), ("left", 41), ("top", 7), ("width", 20), ("height", 5));
        var part = crop.ToBytes(Ct);
        Assert.Equal(whole[(((7 * 150) + 41) * 3)..(((7 * 150) + 61) * 3)], part[..60]);
        Assert.Equal(whole[(((11 * 150) + 41) * 3)..(((11 * 150) + 61) * 3)], part[^60..]);
    }

    [Fact]
    public void The_output_outlives_the_callers_reference_to_the_input()
    {
        var pixels = Enumerable.Range(0, 64 * 8 * 3).Select(i => (byte)i).ToArray();
        VipsImage mapped;
        using (var input = VipsImage.FromBytes(pixels, 64, 8, 3))
        {
            mapped = VipsRowStage.Map(input, 32, new EveryOtherPixel());
        }

        using (mapped)
        {
            Assert.Equal(32 * 8 * 3, mapped.ToBytes(Ct).Length);
        }
    }

    [Fact]
    public void A_transform_that_throws_fails_the_saver_instead_of_the_process()
    {
        using var input = VipsImage.FromBytes(new byte[16 * 16 * 3], 16, 16, 3);
        using var mapped = VipsRowStage.Map(input, 8, new Throwing());

        Assert.Throws<VipsException>(() => mapped.SaveToBuffer("pngsave_buffer", Ct));
    }

    [Fact]
    public void A_stage_after_a_tiled_operation_computes_each_row_once()
    {
        // libvips' shrink asks for 128x128 tiles; a stage that inherited that would be asked for each tile across a
        // strip of rows and compute the whole rows again each time (measured 8x through the Lanczos stage).
        var pixels = Enumerable.Range(0, 800 * 64 * 3).Select(i => (byte)i).ToArray();
        using var input = VipsImage.FromBytes(pixels, 800, 64, 3);
        using var tiled = input.Call("shrink", ("hshrink", 2.0), ("vshrink", 2.0));
        var counting = new CountingCopy(400);
        using var mapped = VipsRowStage.Map(tiled, 400, counting);

        var jpeg = mapped.SaveToBuffer("jpegsave_buffer", Ct);

        Assert.NotEmpty(jpeg);
        Assert.Equal(32, counting.Rows);
    }

    [Fact]
    public void A_vertical_factor_hands_the_transform_that_many_input_rows_per_output_row()
    {
        // Row y of the input is filled with the value y, so each output row shows which input rows it was given.
        var pixels = new byte[10 * 7 * 3];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i / (10 * 3));
        }

        using var input = VipsImage.FromBytes(pixels, 10, 7, 3);
        using var mapped = VipsRowStage.Map(input, 10, new LastOfThreeRows(), verticalFactor: 3);
        Assert.Equal((10, 2), (mapped.Width, mapped.Height));

        var output = mapped.ToBytes(Ct);

        // Output rows 0 and 1 come from input rows 0–2 and 3–5; row 6 is left over and dropped.
        Assert.Equal(Enumerable.Repeat((byte)2, 30).Concat(Enumerable.Repeat((byte)5, 30)), output);
    }

    private sealed class CountingCopy(int width) : IRowTransform
    {
        private int _rows;

        public int Rows => _rows;

        public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows)
        {
            Interlocked.Add(ref _rows, rows);
            for (var y = 0; y < rows; y++)
            {
                Buffer.MemoryCopy(input + (y * inputStride), output + (y * outputStride), width * 3, width * 3);
            }
        }
    }

    private sealed class LastOfThreeRows : IRowTransform
    {
        public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows)
        {
            for (var y = 0; y < rows; y++)
            {
                Buffer.MemoryCopy(input + (((3 * y) + 2) * inputStride), output + (y * outputStride), 30, 30);
            }
        }
    }

    private sealed class EveryOtherPixel : IRowTransform
    {
        public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows)
        {
            var width = (int)(outputStride / 3);
            for (var y = 0; y < rows; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    for (var b = 0; b < 3; b++)
                    {
                        output[(y * outputStride) + (x * 3) + b] = input[(y * inputStride) + (2 * x * 3) + b];
                    }
                }
            }
        }
    }

    private sealed class Throwing : IRowTransform
    {
        public void Transform(byte* input, nint inputStride, byte* output, nint outputStride, int rows) =>
            throw new InvalidOperationException("a bug in a transform");
    }
}
