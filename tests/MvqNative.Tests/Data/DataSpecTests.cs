// DataSpecTests.cs: parsing data specs and loading them for a model's input shape.
using MvqNative.Data;
using Xunit;

namespace MvqNative.Tests.Data;

public class DataSpecTests
{
    [Theory]
    [InlineData("fashion-mnist", "train")]
    [InlineData("fashion-mnist:train", "train")]
    [InlineData("fashion-mnist:test", "test")]
    public void ParsesFashionMnist(string text, string split)
    {
        var s = DataSpec.Parse(text);
        Assert.Equal(DataSourceKind.FashionMnist, s.Kind);
        Assert.Equal(split, s.Split);
    }

    [Theory]
    [InlineData("mnist")]
    [InlineData("fashion-mnist:val")]
    [InlineData("folder:")]
    [InlineData("idx:")]
    [InlineData("")]
    public void BadSpecsAreInputErrors(string text)
    {
        var e = Assert.Throws<MvqInputException>(() => DataSpec.Parse(text));
        Assert.StartsWith(text + ": ", e.Message);
    }

    [Fact]
    public void MissingPathsAreInputErrorsNamingThePath()
    {
        using var dir = new TempDir();
        var missing = dir.File("gone");
        Assert.Contains(missing, Assert.Throws<MvqInputException>(() => DataSpec.Parse("folder:" + missing)).Message);
        Assert.Contains(missing, Assert.Throws<MvqInputException>(() => DataSpec.Parse("idx:" + missing)).Message);
        var images = dir.File("i-idx3-ubyte");
        new IdxFile([2, 3, 3], new byte[18]).Write(images);
        Assert.Contains(missing, Assert.Throws<MvqInputException>(() => DataSpec.Parse($"idx:{images},{missing}")).Message);
    }

    [Fact]
    public void IdxSpecWithAndWithoutLabels()
    {
        using var dir = new TempDir();
        var images = dir.File("i-idx3-ubyte.gz");
        var labels = dir.File("l,idx1-ubyte"); // a comma inside a name must not confuse the parser
        new IdxFile([2, 3, 4], Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray()).Write(images, gzip: true);
        new IdxFile([2], [7, 3]).Write(labels);

        var plain = DataSpec.Parse("idx:" + images).Load(1, 3, 4);
        Assert.Equal(2, plain.Count);
        Assert.Null(plain.Labels);
        Assert.Equal(230 / 255f, plain.Pixels[23]);

        var spec = DataSpec.Parse($"idx:{images},{labels}");
        Assert.Equal(labels, spec.LabelsPath);
        var withLabels = spec.Load(1, 3, 4);
        Assert.Equal(new[] { 7, 3 }, withLabels.Labels);

        var rgb = spec.Load(3, 3, 4, convert: true);
        Assert.Equal(3, rgb.Channels);
        Assert.Equal(rgb.Pixels.AsSpan(0, 12).ToArray(), rgb.Pixels.AsSpan(24, 12).ToArray());
        Assert.Contains("channel", Assert.Throws<MvqInputException>(() => spec.Load(3, 3, 4)).Message);
        Assert.Contains("3x4", Assert.Throws<MvqInputException>(() => spec.Load(1, 4, 4)).Message);
    }

    [Fact]
    public void FashionMnistSpecLoadsAndChecksTheModelShape()
    {
        var spec = DataSpec.Parse("fashion-mnist:test");
        var d = spec.Load(1, 28, 28);
        Assert.Equal(10000, d.Count);
        var e = Assert.Throws<MvqInputException>(() => spec.Load(1, 32, 32));
        Assert.Contains("28x28", e.Message);
    }

    [Fact]
    public void FolderSpecLoadsThroughImageFolder()
    {
        using var dir = new TempDir();
        MvqNative.Imaging.ImageGrid.Save(dir.File("a.png"), [0.2f, 0.4f, 0.6f, 0.8f], 1, 1, 2, 2, columns: 1, padding: 0);
        var d = DataSpec.Parse("folder:" + dir.Path).Load(1, 2, 2);
        Assert.Equal(1, d.Count);
        Assert.Equal(MathF.Round(0.6f * 255) / 255f, d.Pixels[2]);
    }
}
