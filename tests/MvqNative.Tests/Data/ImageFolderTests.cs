// ImageFolderTests.cs: image files and folders: pixels, order, crop, channel rule and the errors for bad files.
using MvqNative.Data;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit;

namespace MvqNative.Tests.Data;

public class ImageFolderTests
{
    private static void SaveGray(string path, int w, int h, Func<int, int, byte> f)
    {
        using var img = new Image<L8>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img[x, y] = new L8(f(x, y));
        img.Save(path);
    }

    private static void SaveRgb(string path, int w, int h, Func<int, int, Rgb24> f)
    {
        using var img = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img[x, y] = f(x, y);
        img.Save(path);
    }

    private static MvqInputException FailsNaming(string file, Action act, string expect = "")
    {
        var e = Assert.Throws<MvqInputException>(act);
        Assert.Contains(file, e.Message);
        Assert.Contains(expect, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void LoadsGrayPixelsExactlyInNameOrder()
    {
        using var dir = new TempDir();
        // Written out of order; each file's pixel (x, y) = 10*k + x + 3*y, k from its name.
        foreach (var (name, k) in new[] { ("b.png", 1), ("c.bmp", 2), ("a.png", 0) })
            SaveGray(dir.File(name), 5, 4, (x, y) => (byte)(10 * k + x + 3 * y));
        File.WriteAllText(dir.File("notes.txt"), "ignored");
        var d = ImageFolder.Load(dir.Path, 1, 4, 5);
        Assert.Equal(3, d.Count);
        Assert.Null(d.Labels);
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < 4; y++)
                for (int x = 0; x < 5; x++)
                    Assert.Equal((10 * k + x + 3 * y) / 255f, d.Pixels[(k * 4 + y) * 5 + x]);
    }

    [Fact]
    public void LoadsRgbAsPlanes()
    {
        using var dir = new TempDir();
        var path = dir.File("c.png");
        SaveRgb(path, 3, 2, (x, y) => new Rgb24((byte)(x * 50), (byte)(y * 100), 7));
        var px = ImageFile.Load(path, 3, 2, 3);
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 3; x++)
            {
                Assert.Equal(x * 50 / 255f, px[0 * 6 + y * 3 + x]);
                Assert.Equal(y * 100 / 255f, px[1 * 6 + y * 3 + x]);
                Assert.Equal(7 / 255f, px[2 * 6 + y * 3 + x]);
            }
    }

    [Fact]
    public void CentreCropsToTheTargetAspectBeforeResizing()
    {
        using var dir = new TempDir();
        var path = dir.File("wide.png");
        // 40x20: the centre 20x20 square is 200, the side bands 0; a square target keeps only the centre.
        SaveGray(path, 40, 20, (x, y) => x is >= 10 and < 30 ? (byte)200 : (byte)0);
        var px = ImageFile.Load(path, 1, 10, 10);
        Assert.All(px, v => Assert.InRange(v, 199 / 255f, 201 / 255f)); // bicubic of a constant, up to 8-bit rounding
        var tall = ImageFile.Load(path, 1, 10, 20); // same aspect as the file: nothing cropped, both bands stay
        Assert.Equal(0f, tall[0]);
        Assert.InRange(tall[10], 199 / 255f, 201 / 255f);
    }

    [Fact]
    public void LoadsJpeg()
    {
        using var dir = new TempDir();
        var path = dir.File("p.jpg");
        SaveRgb(path, 16, 16, (_, _) => new Rgb24(200, 40, 90));
        var px = ImageFile.Load(path, 3, 8, 8);
        Assert.InRange(px[0], 190 / 255f, 210 / 255f); // JPEG is lossy
        Assert.InRange(px[64], 30 / 255f, 50 / 255f);
        Assert.InRange(px[128], 80 / 255f, 100 / 255f);
    }

    [Fact]
    public void ColourImageForOneChannelModelIsRejectedUnlessConverted()
    {
        using var dir = new TempDir();
        var path = dir.File("colour.png");
        SaveRgb(path, 4, 4, (x, _) => x == 2 ? new Rgb24(255, 0, 0) : new Rgb24(9, 9, 9));
        FailsNaming(path, () => ImageFile.Load(path, 1, 4, 4), "colour");
        FailsNaming(path, () => ImageFolder.Load(dir.Path, 1, 4, 4), "colour");
        var px = ImageFile.Load(path, 1, 4, 4, convert: true);
        Assert.Equal(0.2126f * 255 / 255f, px[2], 5);
        Assert.Equal(9 / 255f, px[0], 5);
    }

    [Fact]
    public void GrayImageForThreeChannelModelIsRejectedUnlessConverted()
    {
        using var dir = new TempDir();
        var path = dir.File("gray.png");
        SaveGray(path, 4, 4, (x, y) => (byte)(x * 16 + y));
        FailsNaming(path, () => ImageFile.Load(path, 3, 4, 4), "grayscale");
        var px = ImageFile.Load(path, 3, 4, 4, convert: true);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(px[i], px[16 + i]);
            Assert.Equal(px[i], px[32 + i]);
        }
        Assert.Equal((1 * 16 + 2) / 255f, px[2 * 4 + 1]);
    }

    [Fact]
    public void CorruptPngNamesTheFile()
    {
        using var dir = new TempDir();
        SaveGray(dir.File("a.png"), 4, 4, (_, _) => 1);
        var bad = dir.File("b.png");
        var junk = new byte[300];
        new Random(3).NextBytes(junk);
        File.WriteAllBytes(bad, junk);
        FailsNaming(bad, () => ImageFolder.Load(dir.Path, 1, 4, 4), "not a recognised image");
    }

    [Fact]
    public void PngWithCorruptDataNamesTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("flip.png");
        var rng = new Random(5);
        SaveGray(path, 64, 64, (_, _) => (byte)rng.Next(256));
        var b = File.ReadAllBytes(path);
        for (int i = 60; i < b.Length - 20; i += 7) b[i] ^= 0xFF; // inside IDAT: CRC and zlib checks fail
        File.WriteAllBytes(path, b);
        FailsNaming(path, () => ImageFile.Load(path, 1, 64, 64));
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.1)]
    public void TruncatedPngNamesTheFile(double keep)
    {
        using var dir = new TempDir();
        var path = dir.File("cut.png");
        var rng = new Random(4);
        SaveGray(path, 64, 64, (_, _) => (byte)rng.Next(256)); // noise: IDAT is most of the file
        var b = File.ReadAllBytes(path);
        File.WriteAllBytes(path, b[..(int)(b.Length * keep)]);
        FailsNaming(path, () => ImageFile.Load(path, 1, 64, 64));
    }

    [Theory]
    [InlineData(16000, 16000)] // each side allowed, 256 megapixels is not
    [InlineData(20000, 10)] // one side over the limit
    public void AbsurdDimensionsAreRejectedFromTheHeader(int w, int h)
    {
        using var dir = new TempDir();
        var path = dir.File("huge.bmp");
        // A 54-byte BMP header claiming w x h pixels at 24 bits, with no pixel data at all.
        var b = new byte[54];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BitConverter.TryWriteBytes(b.AsSpan(2), 54);
        BitConverter.TryWriteBytes(b.AsSpan(10), 54);
        BitConverter.TryWriteBytes(b.AsSpan(14), 40);
        BitConverter.TryWriteBytes(b.AsSpan(18), w);
        BitConverter.TryWriteBytes(b.AsSpan(22), h);
        BitConverter.TryWriteBytes(b.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(b.AsSpan(28), (short)24);
        File.WriteAllBytes(path, b);
        FailsNaming(path, () => ImageFile.Load(path, 3, 8, 8), $"{w}x{h} is over the size limit");
    }

    [Fact]
    public void MissingAndEmptyFoldersAreInputErrors()
    {
        using var dir = new TempDir();
        var missing = dir.File("no-such-folder");
        FailsNaming(missing, () => ImageFolder.Load(missing, 1, 8, 8), "not found");
        FailsNaming(dir.Path, () => ImageFolder.Load(dir.Path, 1, 8, 8), "no image files");
        FailsNaming(dir.File("x.png"), () => ImageFile.Load(dir.File("x.png"), 1, 8, 8), "not found");
    }
}
