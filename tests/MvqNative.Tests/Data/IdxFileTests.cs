// IdxFileTests.cs: IDX round trips (raw and gzip) and the errors for truncated or corrupt files.
using MvqNative.Data;
using Xunit;

namespace MvqNative.Tests.Data;

public class IdxFileTests
{
    private static IdxFile Sample(int n = 5, int h = 3, int w = 4, int seed = 1)
    {
        var data = new byte[n * h * w];
        new Random(seed).NextBytes(data);
        return new IdxFile([n, h, w], data);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RoundTrip(bool gzip)
    {
        using var dir = new TempDir();
        var path = dir.File(gzip ? "x-idx3-ubyte.gz" : "x-idx3-ubyte");
        var idx = Sample();
        idx.Write(path, gzip);
        var back = IdxFile.Read(path);
        Assert.Equal(idx.Dims, back.Dims);
        Assert.Equal(idx.Data, back.Data);
    }

    [Fact]
    public void RawHeaderIsBigEndianWithUbyteMagic()
    {
        using var dir = new TempDir();
        var path = dir.File("h");
        new IdxFile([2, 1, 258], new byte[516]).Write(path);
        var b = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 2 }, b[..16]);
        Assert.Equal(16 + 516, b.Length);
    }

    private static MvqInputException ReadFails(string path, string expect)
    {
        var e = Assert.Throws<MvqInputException>(() => IdxFile.Read(path));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(expect, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void TruncatedRawNamesTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("t-idx3-ubyte");
        Sample().Write(path);
        var b = File.ReadAllBytes(path);
        File.WriteAllBytes(path, b[..^7]);
        ReadFails(path, "truncated");
        File.WriteAllBytes(path, b[..10]); // cut inside the dimensions
        ReadFails(path, "truncated header");
        File.WriteAllBytes(path, b[..2]);
        ReadFails(path, "truncated");
    }

    [Fact]
    public void TruncatedGzipNamesTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("t-idx3-ubyte.gz");
        Sample(200, 28, 28).Write(path, gzip: true);
        var b = File.ReadAllBytes(path);
        File.WriteAllBytes(path, b[..(b.Length / 2)]);
        ReadFails(path, "");
    }

    [Fact]
    public void CorruptGzipNamesTheFile()
    {
        using var dir = new TempDir();
        var path = dir.File("c-idx3-ubyte.gz");
        Sample(200, 28, 28).Write(path, gzip: true);
        var b = File.ReadAllBytes(path);
        for (int i = b.Length / 3; i < b.Length / 3 + 64; i++) b[i] ^= 0x5A;
        File.WriteAllBytes(path, b);
        ReadFails(path, "");
    }

    [Fact]
    public void BadMagicTypeAndTrailingBytesAreRejected()
    {
        using var dir = new TempDir();
        var path = dir.File("bad");
        File.WriteAllBytes(path, [1, 2, 8, 1, 0, 0, 0, 1, 7]);
        ReadFails(path, "magic");
        File.WriteAllBytes(path, [0, 0, 0x0D, 1, 0, 0, 0, 1, 1, 2, 3, 4]); // float type
        ReadFails(path, "0x0d");
        File.WriteAllBytes(path, [0, 0, 8, 1, 0, 0, 0, 1, 7, 9]); // one byte more than [1]
        ReadFails(path, "unexpected bytes");
        File.WriteAllBytes(path, [0, 0, 8, 0]);
        ReadFails(path, "0 dimensions");
    }

    [Fact]
    public void HugeHeaderDimensionsDoNotAllocate()
    {
        using var dir = new TempDir();
        var path = dir.File("huge");
        // [2^30, 2^30, 2^30] would be an exabyte; it must be refused from the header alone.
        File.WriteAllBytes(path, [0, 0, 8, 3, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 1]);
        ReadFails(path, "too large");
    }

    [Fact]
    public void MissingFileNamesTheFile()
    {
        using var dir = new TempDir();
        ReadFails(dir.File("nope-idx3-ubyte"), "not found");
    }
}
