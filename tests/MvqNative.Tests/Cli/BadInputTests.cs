using Xunit;

namespace MvqNative.Tests.Cli;

/// <summary>Bad input ends in one "error: FILE: problem" line, a non-zero exit, and nothing lost.</summary>
[Collection("cli")]
public sealed class BadInputTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mvq-cli");
    public void Dispose() => _dir.Delete(true);

    private string P(string name) => Path.Combine(_dir.FullName, name);

    private static void AssertOneLineError(int code, string err, string mustContain)
    {
        Assert.NotEqual(0, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(mustContain, lines[0]);
    }

    [Fact]
    public void CorruptCheckpoint()
    {
        File.WriteAllBytes(P("bad.safetensors"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        var (code, _, err) = CliHarness.Run("eval", "--model", P("bad.safetensors"), "--limit", "4");
        AssertOneLineError(code, err, "bad.safetensors");
    }

    [Fact]
    public void TruncatedCheckpoint()
    {
        var good = P("good.safetensors");
        var (c0, _, e0) = CliHarness.Run("train", "--preset", "fmnist-vq-global", "--steps", "2", "--batch", "4", "--limit", "16", "--out", _dir.FullName);
        Assert.True(c0 == 0, e0);
        var bytes = File.ReadAllBytes(Path.Combine(_dir.FullName, "model.safetensors"));
        File.WriteAllBytes(good, bytes[..(bytes.Length / 2)]);
        var (code, _, err) = CliHarness.Run("eval", "--model", good, "--limit", "4");
        AssertOneLineError(code, err, "good.safetensors");
    }

    [Fact]
    public void MissingDatasetFolderKeepsExistingCheckpoint()
    {
        var (c0, _, e0) = CliHarness.Run("train", "--preset", "fmnist-vq-global", "--steps", "2", "--batch", "4", "--limit", "16", "--out", _dir.FullName);
        Assert.True(c0 == 0, e0);
        var ckpt = Path.Combine(_dir.FullName, "model.safetensors");
        var before = File.ReadAllBytes(ckpt);
        // --force: replacing the model is asked for, and the failing run must still leave it as it was.
        var (code, _, err) = CliHarness.Run("train", "--preset", "fmnist-vq-global", "--data", "folder:" + P("nope"), "--steps", "2", "--out", _dir.FullName, "--force");
        AssertOneLineError(code, err, "nope");
        Assert.Equal(before, File.ReadAllBytes(ckpt));
    }

    [Fact]
    public void CorruptPngForReconstruct()
    {
        var (c0, _, e0) = CliHarness.Run("train", "--preset", "fmnist-vq-global", "--steps", "2", "--batch", "4", "--limit", "16", "--out", _dir.FullName);
        Assert.True(c0 == 0, e0);
        var png = P("broken.png");
        File.WriteAllBytes(png, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 1, 2]);
        var (code, _, err) = CliHarness.Run("reconstruct", "--model", Path.Combine(_dir.FullName, "model.safetensors"), "--input", png, "--output", P("out.png"));
        AssertOneLineError(code, err, "broken.png");
        Assert.False(File.Exists(P("out.png")));
    }

    [Fact]
    public void TruncatedIdxDataset()
    {
        // A valid IDX header promising 10 images of 28x28, followed by too few bytes.
        var bytes = new byte[16 + 100];
        bytes[2] = 0x08; bytes[3] = 3;
        bytes[7] = 10; bytes[11] = 28; bytes[15] = 28;
        File.WriteAllBytes(P("short-idx3-ubyte"), bytes);
        var (code, _, err) = CliHarness.Run("train", "--preset", "fmnist-vq-global", "--data", "idx:" + P("short-idx3-ubyte"), "--steps", "1", "--out", P("run"));
        AssertOneLineError(code, err, "short-idx3-ubyte");
    }

    [Fact]
    public void UnknownPresetAndBadSteps()
    {
        var (code, _, err) = CliHarness.Run("train", "--preset", "nope", "--out", P("x"));
        AssertOneLineError(code, err, "unknown preset");
        (code, _, err) = CliHarness.Run("train", "--preset", "fmnist-vq", "--steps", "0", "--out", P("x"));
        AssertOneLineError(code, err, "--steps");
    }
}
