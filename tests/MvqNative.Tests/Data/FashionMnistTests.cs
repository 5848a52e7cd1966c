// FashionMnistTests.cs: the installed Fashion-MNIST (Debian dataset-fashion-mnist) loads with the right shapes.
using MvqNative.Data;
using Xunit;

namespace MvqNative.Tests.Data;

public class FashionMnistTests
{
    // The dataset is installed on developer machines and in CI, so these assert rather than skip.
    [Theory]
    [InlineData("train", 60000)]
    [InlineData("test", 10000)]
    public void LoadsSplit(string split, int count)
    {
        var d = FashionMnist.Load(split);
        Assert.Equal(count, d.Count);
        Assert.Equal((1, 28, 28), (d.Channels, d.Height, d.Width));
        Assert.Equal((long)count * 28 * 28, d.Pixels.LongLength);
        float min = float.MaxValue, max = float.MinValue;
        foreach (var v in d.Pixels) { min = Math.Min(min, v); max = Math.Max(max, v); }
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);
        Assert.NotNull(d.Labels);
        // Fashion-MNIST is balanced: count/10 images of each of the 10 classes.
        var perClass = d.Labels!.GroupBy(l => l).OrderBy(g => g.Key).Select(g => (g.Key, g.Count())).ToArray();
        Assert.Equal(Enumerable.Range(0, 10).Select(k => (k, count / 10)).ToArray(), perClass);
    }

    [Fact]
    public void RootIsSearchedFirstAndItsErrorsNameTheFile()
    {
        using var dir = new TempDir();
        new IdxFile([3, 28, 28], new byte[3 * 28 * 28]).Write(dir.File("t10k-images-idx3-ubyte"));
        File.WriteAllBytes(dir.File("t10k-labels-idx1-ubyte.gz"), [1, 2, 3]);
        var e = Assert.Throws<MvqInputException>(() => FashionMnist.Load("test", dir.Path));
        Assert.Contains(dir.File("t10k-labels-idx1-ubyte.gz"), e.Message);

        new IdxFile([3], [0, 9, 4]).Write(dir.File("t10k-labels-idx1-ubyte.gz"), gzip: true);
        var d = FashionMnist.Load("test", dir.Path);
        Assert.Equal(3, d.Count);
        Assert.Equal(new[] { 0, 9, 4 }, d.Labels);
    }

    [Fact]
    public void SearchOrderEndsWithTheDebianDirectory()
    {
        var dirs = FashionMnist.SearchDirs("/data/x");
        Assert.Equal(["/data/x", Path.Combine("/data/x", "fashion-mnist"), FashionMnist.SystemDir], dirs);
    }

    [Fact]
    public void AbsentDatasetListsThePlacesSearched()
    {
        using var dir = new TempDir();
        string[] dirs = [dir.File("a"), dir.File("b")];
        // Only the labels file present in b: both files are needed.
        Directory.CreateDirectory(dirs[1]);
        new IdxFile([1], [0]).Write(Path.Combine(dirs[1], "train-labels-idx1-ubyte.gz"), gzip: true);
        var e = Assert.Throws<MvqInputException>(() => FashionMnist.Load("train", dirs));
        Assert.StartsWith("fashion-mnist:train: ", e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains($"searched: {dirs[0]}, {dirs[1]} ", e.Message);
    }

    [Fact]
    public void UnknownSplitIsAnInputError()
    {
        var e = Assert.Throws<MvqInputException>(() => FashionMnist.Load("validation"));
        Assert.Contains("unknown split", e.Message);
    }
}
