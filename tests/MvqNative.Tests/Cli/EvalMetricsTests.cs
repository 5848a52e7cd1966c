// EvalMetricsTests.cs: `mvq eval` with a feature network prints the distribution metrics and the code budget
// (bits per instance, w included); `mvq eval --samples DIR`; `mvq report` writes its table and plots.
using System.Text.Json.Nodes;
using MvqNative.Backends.Cpu;
using MvqNative.Metrics;
using Xunit;

namespace MvqNative.Tests.Cli;

public sealed class EvalMetricsTests : IClassFixture<TinyModels>
{
    private readonly TinyModels _m;
    public EvalMetricsTests(TinyModels m) => _m = m;

    private string Features(TempDir dir)
    {
        using var net = new FeatureNet(CpuBackend.Instance, new FeatureNetConfig { Widths = [4, 4, 8], Hidden = 8 }, seed: 3);
        var path = dir.File("features.safetensors");
        net.Save(path);
        return path;
    }

    [Fact]
    public void EvalPrintsFeatureMetricsAndBitsPerInstance()
    {
        using var dir = new TempDir();
        var f = Features(dir);
        var (code, output, err) = CliHarness.Run("eval", "--model", _m.Mvq, "--data", "folder:" + _m.Images, "--features", f, "--json");
        Assert.True(code == 0, err);
        var o = JsonNode.Parse(output)!;
        foreach (var k in new[] { "rfid", "kid", "kid_std", "perceptual", "mse", "psnr", "ssim" })
            Assert.True(double.IsFinite(o[k]!.GetValue<double>()), k);
        Assert.True(o["rfid"]!.GetValue<double>() >= -1e-9);
        // 5 images: precision/recall (k = 3) run, PRD (20 clusters) does not.
        Assert.InRange(o["precision"]!.GetValue<double>(), 0, 1);
        Assert.Null(o["f8"]);
        // MVQ code: L1 = 2 tokens of 16, L2 = 2 of 16, w of a 32-mask bank: 8 + 8 + 5 bits, 5 tokens.
        Assert.Equal(5, o["tokens_per_instance"]!.GetValue<int>());
        Assert.Equal(21.0, o["bits_per_instance"]!.GetValue<double>(), 9);
        Assert.Equal(5.0, o["bits"]!["w"]!.GetValue<double>(), 9);

        (code, output, err) = CliHarness.Run("eval", "--model", _m.Vq, "--data", "folder:" + _m.Images, "--no-features", "--json");
        Assert.True(code == 0, err);
        o = JsonNode.Parse(output)!;
        Assert.Null(o["rfid"]);
        Assert.Equal(12.0, o["bits_per_instance"]!.GetValue<double>(), 9); // 3 tokens of 16 entries

        (code, output, err) = CliHarness.Run("eval", "--samples", _m.Images, "--data", "folder:" + _m.Images, "--features", f, "--json");
        Assert.True(code == 0, err);
        // The same images on both sides: FID 0, up to the square root of rounding noise of a rank-deficient
        // covariance (5 images, 8 features), hence 1e-4 rather than float64 rounding.
        Assert.Equal(0.0, JsonNode.Parse(output)!["gfid"]!.GetValue<double>(), 4);
    }

    [Fact]
    public void EvalSamplesLeavesOutTheGridOfASampleFolder()
    {
        // `mvq sample` writes NNNNN.png, grid.png (an overview) and codes.json; only the NNNNN.png are samples.
        using var dir = new TempDir();
        var f = Features(dir);
        var samples = dir.File("samples");
        Directory.CreateDirectory(samples);
        var test = MvqNative.Data.FashionMnist.Load("test");
        for (int i = 0; i < 5; i++) MvqNative.Data.ImageFile.Save(Path.Combine(samples, $"{i:D5}.png"), test.Image(i * 7), 1, 28, 28);
        var grid = new float[56 * 56];
        for (int i = 0; i < grid.Length; i++) grid[i] = i % 3 == 0 ? 1f : 0f; // nothing like a garment
        MvqNative.Data.ImageFile.Save(Path.Combine(samples, "grid.png"), grid, 1, 56, 56);
        File.WriteAllText(Path.Combine(samples, "codes.json"), "{}");
        var (code, output, err) = CliHarness.Run("eval", "--samples", samples, "--data", "folder:" + _m.Images, "--features", f, "--json");
        Assert.True(code == 0, err);
        var o = JsonNode.Parse(output)!;
        Assert.Equal(5, o["sample_images"]!.GetValue<int>());
        // The five samples are the fixture's five images (same test images, same PNG round trip): FID 0 as above.
        Assert.Equal(0.0, o["gfid"]!.GetValue<double>(), 4);

        // A plain folder of images (no codes.json) is scored whole, grid.png included.
        File.Delete(Path.Combine(samples, "codes.json"));
        (code, output, err) = CliHarness.Run("eval", "--samples", samples, "--data", "folder:" + _m.Images, "--features", f, "--json");
        Assert.True(code == 0, err);
        Assert.Equal(6, JsonNode.Parse(output)!["sample_images"]!.GetValue<int>());
    }

    [Fact]
    public void ReportWritesTableAndPlots()
    {
        using var dir = new TempDir();
        var cells = new JsonArray();
        foreach (var (name, kind, bits) in new[] { ("vq-L2-K16", "vq", 8.0), ("mvq-L2-K8+8", "mvq", 17.0) })
            foreach (int seed in new[] { 1, 2 })
            {
                var model = kind == "vq"
                    ? new JsonObject { ["kind"] = "vq", ["tokens"] = 2, ["codes"] = 16 }
                    : new JsonObject { ["kind"] = "mvq", ["tokens"] = 2, ["codes"] = 8, ["secondary"] = new JsonObject { ["tokens"] = 1, ["codes"] = 8 }, ["mvq"] = new JsonObject { ["hypotheses"] = 256 } };
                cells.Add(new JsonObject
                {
                    ["name"] = name, ["group"] = "paper-L2", ["seed"] = seed, ["steps"] = 600, ["model"] = model, ["bits_per_instance"] = bits, ["wall_s"] = 10.0,
                    ["eval"] = new JsonObject { ["rfid"] = 10.0 + seed, ["mse"] = 0.02 },
                    ["history"] = new JsonArray(new JsonObject { ["step"] = 25, ["loss"] = 0.1, ["rec"] = 0.05 }, new JsonObject { ["step"] = 50, ["loss"] = 0.08, ["rec"] = 0.04 }),
                });
            }
        File.WriteAllText(dir.File("cells.json"), cells.ToJsonString());
        var (code, _, err) = CliHarness.Run("report", "--cells", dir.File("cells.json"), "--out", dir.File("out"));
        Assert.True(code == 0, err);
        var table = File.ReadAllText(Path.Combine(dir.File("out"), "table.md"));
        Assert.Contains("| vq-L2-K16 | paper-L2 | vq | 16 | 2 | - | - | 8 | 1,2 | 600 | 11.50 ± 0.71 |", table);
        foreach (var png in new[] { "rfid-vs-bits.png", "rfid-vs-k.png", "j-sweep.png", "loss-curves.png" })
            Assert.True(new FileInfo(Path.Combine(dir.File("out"), png)).Length > 1000, png);
        // --loss-cells draws only the named cells: one curve makes a smaller PNG than two.
        long both = new FileInfo(Path.Combine(dir.File("out"), "loss-curves.png")).Length;
        (code, _, err) = CliHarness.Run("report", "--cells", dir.File("cells.json"), "--out", dir.File("one"), "--loss-cells", "vq-L2-K16");
        Assert.True(code == 0, err);
        Assert.NotEqual(both, new FileInfo(Path.Combine(dir.File("one"), "loss-curves.png")).Length);
    }
}
