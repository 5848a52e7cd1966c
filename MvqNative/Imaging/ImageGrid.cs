// ImageGrid.cs: tiles a batch of [C, H, W] float images into one PNG (samples, reconstructions).
using MvqNative.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace MvqNative.Imaging;

/// <summary>Writes image batches as a PNG grid, like torchvision's make_grid + save_image.</summary>
internal static class ImageGrid
{
    /// <summary>
    /// Saves <paramref name="count"/> images from an [N, C, H, W] float batch as one PNG, atomically (temp file + rename).
    /// Images fill rows of <paramref name="columns"/> cells, left to right, top to bottom; each pixel becomes a
    /// <paramref name="scale"/> x <paramref name="scale"/> block (nearest neighbour); cells are separated and
    /// surrounded by <paramref name="padding"/> white pixels. Values are clamped to [0, 1] (NaN gives 0) and
    /// rounded to 8 bits. C = 1 writes a grayscale PNG, C = 3 an RGB PNG.
    /// Image size: columns*(W*scale + padding) + padding by rows*(H*scale + padding) + padding, rows = ceil(count / columns).
    /// </summary>
    public static void Save(string path, ReadOnlySpan<float> images, int count, int channels, int height, int width,
        int columns, int scale = 1, int padding = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 or 3 channels");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scale);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        int size = channels * height * width;
        if ((long)count * size > images.Length)
            throw new ArgumentException($"images holds {images.Length} floats, {count} x [{channels}, {height}, {width}] needs {(long)count * size}", nameof(images));

        int cols = Math.Min(columns, count);
        int rows = (count + cols - 1) / cols;
        int cellW = width * scale + padding, cellH = height * scale + padding;
        long gw = (long)cols * cellW + padding, gh = (long)rows * cellH + padding;
        if (gw > MaxGridSide || gh > MaxGridSide)
            throw new ArgumentException($"grid of {gw}x{gh} pixels is too large for a PNG preview");

        // Planes as bytes, row-major over the whole grid; padding starts white.
        int W = (int)gw, H = (int)gh;
        var planes = new byte[channels][];
        for (int c = 0; c < channels; c++) { planes[c] = new byte[W * H]; planes[c].AsSpan().Fill(255); }
        for (int n = 0; n < count; n++)
        {
            int x0 = padding + (n % cols) * cellW, y0 = padding + (n / cols) * cellH;
            var img = images.Slice(n * size, size);
            for (int c = 0; c < channels; c++)
            {
                var plane = planes[c];
                for (int y = 0; y < height; y++)
                    for (int x = 0; x < width; x++)
                    {
                        byte v = ToByte(img[(c * height + y) * width + x]);
                        for (int sy = 0; sy < scale; sy++)
                            plane.AsSpan((y0 + y * scale + sy) * W + x0 + x * scale, scale).Fill(v);
                    }
            }
        }

        var encoder = new PngEncoder { CompressionLevel = PngCompressionLevel.DefaultCompression };
        if (channels == 1)
        {
            using var image = Image.LoadPixelData<L8>(planes[0], W, H);
            AtomicFile.Write(path, s => image.Save(s, encoder));
        }
        else
        {
            var rgb = new byte[W * H * 3];
            for (int i = 0; i < W * H; i++)
            {
                rgb[3 * i] = planes[0][i];
                rgb[3 * i + 1] = planes[1][i];
                rgb[3 * i + 2] = planes[2][i];
            }
            using var image = Image.LoadPixelData<Rgb24>(rgb, W, H);
            AtomicFile.Write(path, s => image.Save(s, encoder));
        }
    }

    // Grids larger than this are a caller mistake (wrong columns or scale), not a preview.
    private const long MaxGridSide = 32768;

    private static byte ToByte(float v)
    {
        if (!(v > 0f)) return 0; // also NaN
        if (v >= 1f) return 255;
        return (byte)MathF.Round(v * 255f);
    }
}
