// PriorCliTests.cs: `mvq prior train`, `mvq sample` and `mvq decode` of sampled codes on tiny models, and the
// bad-input cases of issue 10 (one-line errors, exit 1, nothing written).
using System.Text.Json.Nodes;
using Xunit;

namespace MvqNative.Tests.Cli;

/// <summary>TinyModels plus a second VQ model of the same config (other seed) and a prior per model.</summary>
public sealed class TinyPriors : IDisposable
{
    public TinyModels M { get; } = new();
    public string VqOther => Path.Combine(M.Dir.FullName, "vq2", "model.safetensors");
    public string VqPriorDir => Path.Combine(M.Dir.FullName, "vq-prior");
    public string MvqPriorDir => Path.Combine(M.Dir.FullName, "mvq-prior");
    public string VqPrior => Path.Combine(VqPriorDir, "prior.safetensors");
    public string MvqPrior => Path.Combine(MvqPriorDir, "prior.safetensors");

    public TinyPriors()
    {
        var dir = Path.GetDirectoryName(VqOther)!;
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(M.Dir.FullName, "vq", "config.json"), Path.Combine(dir, "config.json"));
        var (code, _, err) = CliHarness.Run("train", "--config", Path.Combine(dir, "config.json"), "--steps", "2", "--batch", "4", "--limit", "16", "--seed", "9", "--out", dir);
        Assert.True(code == 0, err);
        foreach (var (model, outDir) in new[] { (M.Vq, VqPriorDir), (M.Mvq, MvqPriorDir) })
        {
            var (c, _, e) = PriorTrain(model, outDir);
            Assert.True(c == 0, e);
        }
    }

    public static (int, string, string) PriorTrain(string model, string outDir, params string[] extra) =>
        CliHarness.Run([.. new[] { "prior", "train", "--model", model, "--data", "fashion-mnist:train", "--limit", "48", "--batch", "8",
            "--layers", "1", "--heads", "2", "--width", "16", "--out", outDir }, .. extra.Contains("--steps") ? extra : [.. extra, "--steps", "6"]]);

    public void Dispose() => M.Dispose();
}

[Collection("cli")]
public sealed class PriorCliTests(TinyPriors p) : IClassFixture<TinyPriors>
{
    private static void AssertOneLineError(int code, string err, params string[] mustContain)
    {
        Assert.Equal(1, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        foreach (var s in mustContain) Assert.Contains(s, lines[0]);
    }

    [Fact]
    public void PriorTrainWritesThePriorMetricsPlotAndCodesCaches()
    {
        foreach (var dir in new[] { p.VqPriorDir, p.MvqPriorDir })
        {
            foreach (var f in new[] { "prior.safetensors", "metrics.json", "loss.png" }) Assert.True(File.Exists(Path.Combine(dir, f)), $"{dir}/{f} missing");
            Assert.Equal(2, Directory.GetFiles(dir, "codes-*.safetensors").Length);
            var m = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!;
            Assert.Equal(6, m["steps"]!.GetValue<int>());
            var ev = m["eval"]!;
            Assert.Equal(10000, ev["images"]!.GetValue<int>());
            foreach (var k in new[] { "nats_per_token", "bits_per_image", "unigram_position_bits_per_image", "unigram_segment_bits_per_image" })
                Assert.True(double.IsFinite(ev[k]!.GetValue<double>()) && ev[k]!.GetValue<double>() > 0, k);
        }
    }

    [Fact]
    public void SecondRunReusesTheCodesCacheAndResumeContinues()
    {
        using var t = new TempDir();
        Assert.Equal(0, TinyPriors.PriorTrain(p.M.Vq, t.Path).Item1);
        var (code, o, err) = TinyPriors.PriorTrain(p.M.Vq, t.Path, "--resume", Path.Combine(t.Path, "prior.safetensors"), "--steps", "8");
        Assert.True(code == 0, err);
        Assert.Contains("from the cache", o);
        Assert.Contains("resumed from", o);
        Assert.Equal(8, JsonNode.Parse(File.ReadAllText(t.File("metrics.json")))!["steps"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("vq", "prior")]
    [InlineData("mvq", "prior")]
    [InlineData("mvq", "random")]
    public void SampledCodesDecodeToTheSameImages(string kind, string mask)
    {
        var (model, prior) = kind == "vq" ? (p.M.Vq, p.VqPrior) : (p.M.Mvq, p.MvqPrior);
        using var t = new TempDir();
        var (code, _, err) = CliHarness.Run("sample", "--model", model, "--prior", prior, "--count", "5", "--batch", "2", "--mask", mask, "--seed", "3", "--output", t.File("s"));
        Assert.True(code == 0, err);
        for (int i = 0; i < 5; i++) Assert.True(File.Exists(t.File($"s/{i:D5}.png")));
        Assert.True(File.Exists(t.File("s/grid.png")));
        var codes = JsonNode.Parse(File.ReadAllText(t.File("s/codes.json")))!;
        Assert.Equal(5, codes["instances"]!.AsArray().Count);
        Assert.Equal(mask == "random", codes["instances"]![0]!["mask"] is not null);
        (code, _, err) = CliHarness.Run("decode", "--model", model, "--codes", t.File("s/codes.json"), "--output", t.File("d"));
        Assert.True(code == 0, err);
        for (int i = 0; i < 5; i++) Assert.Equal(File.ReadAllBytes(t.File($"s/{i:D5}.png")), File.ReadAllBytes(t.File($"d/{i:D5}.png")));
    }

    /// <summary>
    /// `mvq sample` on cuda-emu: the graph-replayed sampling step and the eager one write the same codes.json, and
    /// `mvq decode` of it on the same device reproduces the PNGs; --cuda-graphs on the CPU is refused.
    /// </summary>
    [Fact]
    public void SampleOnCudaEmuGivesTheSameCodesWithAndWithoutGraphs()
    {
        using var t = new TempDir();
        var (code, _, err) = CliHarness.Run("sample", "--model", p.M.Mvq, "--prior", p.MvqPrior, "--count", "5", "--output", t.File("c"), "--cuda-graphs", "on");
        Assert.Equal(1, code);
        Assert.Contains("--cuda-graphs", err);
        var device = TestDevices.Cuda.FirstOrDefault();
        if (device is null)
        {
            Assert.True(TestDevices.EmulatorSkipped, "no CUDA device here: only with the opt-out MVQ_SKIP_EMU=1");
            return;
        }
        foreach (var g in new[] { "on", "off" })
        {
            (code, _, err) = CliHarness.Run("sample", "--model", p.M.Mvq, "--prior", p.MvqPrior, "--count", "5", "--batch", "2", "--seed", "3",
                "--device", device, "--cuda-graphs", g, "--output", t.File(g));
            Assert.True(code == 0, err);
        }
        Assert.Equal(File.ReadAllText(t.File("off/codes.json")), File.ReadAllText(t.File("on/codes.json")));
        (code, _, err) = CliHarness.Run("decode", "--model", p.M.Mvq, "--codes", t.File("on/codes.json"), "--device", device, "--output", t.File("d"));
        Assert.True(code == 0, err);
        for (int i = 0; i < 5; i++) Assert.Equal(File.ReadAllBytes(t.File($"on/{i:D5}.png")), File.ReadAllBytes(t.File($"d/{i:D5}.png")));
    }

    [Theory]
    [InlineData("--count", "0", "--count")]
    [InlineData("--count", "-3", "--count")]
    [InlineData("--temperature", "0", "--temperature")]
    [InlineData("--temperature", "-1", "--temperature")]
    [InlineData("--top-p", "0", "--top-p")]
    [InlineData("--top-p", "1.5", "--top-p")]
    public void BadSamplingOptionsFailWithOneLineAndWriteNothing(string option, string value, string named)
    {
        using var t = new TempDir();
        var (code, _, err) = CliHarness.Run("sample", "--model", p.M.Vq, "--prior", p.VqPrior, "--output", t.File("s"), option, value);
        AssertOneLineError(code, err, named);
        Assert.False(Directory.Exists(t.File("s")));
    }

    [Fact]
    public void APriorOfAnotherAutoencoderIsRefused()
    {
        using var t = new TempDir();
        // Another config (MVQ prior with the VQ model), then the same config with other weights.
        var (code, _, err) = CliHarness.Run("sample", "--model", p.M.Vq, "--prior", p.MvqPrior, "--output", t.File("s"));
        AssertOneLineError(code, err, p.MvqPrior, "another autoencoder");
        (code, _, err) = CliHarness.Run("sample", "--model", p.VqOther, "--prior", p.VqPrior, "--output", t.File("s"));
        AssertOneLineError(code, err, p.VqPrior, "different weights");
        Assert.False(Directory.Exists(t.File("s")));
        // --resume with a prior of another autoencoder.
        (code, _, err) = TinyPriors.PriorTrain(p.VqOther, t.File("r"), "--resume", p.VqPrior);
        AssertOneLineError(code, err, p.VqPrior, "another autoencoder");
    }

    [Fact]
    public void ACodesCacheOfAnotherModelIsRefused()
    {
        using var t = new TempDir();
        foreach (var f in Directory.GetFiles(p.VqPriorDir, "codes-*.safetensors")) File.Copy(f, Path.Combine(t.Path, Path.GetFileName(f)));
        var (code, _, err) = TinyPriors.PriorTrain(p.VqOther, t.Path);
        AssertOneLineError(code, err, "codes-", "another autoencoder");
        Assert.False(File.Exists(t.File("prior.safetensors")));
    }

    [Fact]
    public void ATruncatedPriorFileIsRefused()
    {
        using var t = new TempDir();
        var bytes = File.ReadAllBytes(p.VqPrior);
        File.WriteAllBytes(t.File("cut.safetensors"), bytes[..(bytes.Length / 2)]);
        var (code, _, err) = CliHarness.Run("sample", "--model", p.M.Vq, "--prior", t.File("cut.safetensors"), "--output", t.File("s"));
        AssertOneLineError(code, err, "cut.safetensors");
        Assert.False(Directory.Exists(t.File("s")));
    }

    [Fact]
    public void BenchSamplePrintsTheSplitForEachPreset()
    {
        var (code, o, err) = CliHarness.Run("bench", "sample", "--presets", "fmnist-vq-global", "fmnist-mvq-global", "--count", "4", "--batch", "4", "--runs", "1", "--warmup", "0",
            "--layers", "1", "--width", "16", "--heads", "2", "--json");
        Assert.True(code == 0, err);
        var j = JsonNode.Parse(o)!;
        var rows = j["rows"]!.AsArray();
        Assert.Equal(2, rows.Count);
        foreach (var r in rows)
            foreach (var k in new[] { "prior_ms", "decode_ms", "images_per_s", "tokens_per_image", "prior_us_per_token" })
                Assert.True(r![k]!.GetValue<double>() > 0, k);
        Assert.Single(j["speedups"]!.AsArray());
    }

    [Fact]
    public void BenchMvqTimesTheModelOfAConfigFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("config.json"), """
            {"model": {"kind": "mvq", "head": "global", "tokens": 2, "codes": 8, "codeDim": 16,
             "secondary": {"tokens": 1, "codeDim": 16, "codes": 8}, "mvq": {"hypotheses": 4, "evalHypotheses": 4, "fHidden": 16, "chunk": 4}}}
            """);
        var (code, o, err) = CliHarness.Run("bench", "mvq", "--config", dir.File("config.json"), "--hypotheses", "1", "2", "--batch", "2", "--steps", "1", "--warmup", "0", "--json");
        Assert.True(code == 0, err);
        var j = JsonNode.Parse(o)!;
        Assert.EndsWith("config.json", j["config"]!.GetValue<string>());
        Assert.Equal([1, 2], j["rows"]!.AsArray().Select(r => r!["hypotheses"]!.GetValue<int>()));
        Assert.All(j["rows"]!.AsArray(), r => Assert.True(r!["ms_per_step"]!.GetValue<double>() > 0));
        var (bad, _, berr) = CliHarness.Run("bench", "mvq", "--config", dir.File("missing.json"));
        Assert.Equal(1, bad);
        Assert.Contains("config file not found", berr);
    }

    [Fact]
    public void BenchPriorPrintsStepTimes()
    {
        var (code, o, err) = CliHarness.Run("bench", "prior", "--preset", "fmnist-mvq-global", "--batch", "2", "--steps", "2", "--warmup", "1", "--json");
        Assert.True(code == 0, err);
        var j = JsonNode.Parse(o)!;
        Assert.Equal(5, j["tokens_per_image"]!.GetValue<int>());
        Assert.Equal(2, j["step_ms"]!.AsArray().Count);
        Assert.True(j["images_per_s"]!.GetValue<double>() > 0);
    }
}
