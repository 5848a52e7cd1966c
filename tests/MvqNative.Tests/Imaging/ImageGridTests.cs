// ImageGridTests.cs: PNG grids: layout, scaling, padding, clamping, and the save/load round trip of one image.
using MvqNative.Data;
using MvqNative.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MvqNative.Tests.Imaging;

public class ImageGridTests
{
    [Fact]
    public void GridLayoutScaleAndPadding()
    {
        using var dir = new TempDir();
        var path = dir.File("grid.png");
        const int n = 5, h = 2, w = 3, cols = 3, scale = 2, pad = 1;
        var images = new float[n * h * w];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < h * w; p++)
                images[i * h * w + p] = (i * 40 + p * 5) / 255f;
        ImageGrid.Save(path, images, n, 1, h, w, cols, scale, pad);

        using var img = Image.Load<L8>(path);
        Assert.Equal(cols * (w * scale + pad) + pad, img.Width);
        Assert.Equal(2 * (h * scale + pad) + pad, img.Height);
        for (int i = 0; i < n; i++)
        {
            int x0 = pad + (i % cols) * (w * scale + pad), y0 = pad + (i / cols) * (h * scale + pad);
            for (int y = 0; y < h * scale; y++)
                for (int x = 0; x < w * scale; x++)
                    Assert.Equal(i * 40 + (y / scale * w + x / scale) * 5, img[x0 + x, y0 + y].PackedValue);
        }
        Assert.Equal(255, img[0, 0].PackedValue); // border padding is white
        Assert.Equal(255, img[pad + w * scale, pad].PackedValue); // gap between cells
        Assert.Equal(255, img[img.Width - 2, img.Height - 2].PackedValue); // empty sixth cell
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void ValuesAreClampedAndNaNIsBlack()
    {
        using var dir = new TempDir();
        var path = dir.File("clamp.png");
        ImageFile.Save(path, [-1f, 2f, float.NaN, 0.5f], 1, 1, 4);
        using var img = Image.Load<L8>(path);
        Assert.Equal(new byte[] { 0, 255, 0, 128 }, Enumerable.Range(0, 4).Select(x => img[x, 0].PackedValue).ToArray());
    }

    [Fact]
    public void RgbImageRoundTripsThroughPng()
    {
        using var dir = new TempDir();
        var path = dir.File("one.png");
        var px = new float[3 * 5 * 7];
        var rng = new Random(2);
        for (int i = 0; i < px.Length; i++) px[i] = rng.Next(256) / 255f;
        px[0] = 1f; px[1] = 0f; // make sure it is colour for the channel rule
        ImageFile.Save(path, px, 3, 5, 7);
        var back = ImageFile.Load(path, 3, 5, 7);
        Assert.Equal(px, back);
    }

    [Fact]
    public void SaveReplacesAnExistingFile()
    {
        using var dir = new TempDir();
        var path = dir.File("r.png");
        ImageFile.Save(path, [0f, 0f], 1, 1, 2);
        ImageFile.Save(path, [1f, 1f], 1, 1, 2);
        Assert.Equal(new float[] { 1f, 1f }, ImageFile.Load(path, 1, 1, 2));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}
