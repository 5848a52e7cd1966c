// CodesTests.cs: `mvq encode` / `mvq decode` round trips (VQ and MVQ), codes.json validation, and `mvq traverse`.
using System.Text.Json.Nodes;
using MvqNative.Backends.Cpu;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Models;
using SixLabors.ImageSharp;
using Xunit;

namespace MvqNative.Tests.Cli;

/// <summary>Two tiny models (VQ and MVQ, global heads) trained for 2 steps through `mvq train --config`, and 5 test PNGs.</summary>
public sealed class TinyModels : IDisposable
{
    public DirectoryInfo Dir { get; } = Directory.CreateTempSubdirectory("mvq-codes");
    public string Vq => Path.Combine(Dir.FullName, "vq", "model.safetensors");
    public string Mvq => Path.Combine(Dir.FullName, "mvq", "model.safetensors");
    public string Images => Path.Combine(Dir.FullName, "imgs");

    private const string Encoder = "\"encoder\": {\"channels\": [8, 16], \"resBlocks\": 1, \"resHidden\": 8}";

    public TinyModels()
    {
        Train("vq", $"{{\"model\": {{\"kind\": \"vq\", \"head\": \"global\", \"tokens\": 3, \"codes\": 16, \"codeDim\": 8, {Encoder}}}}}");
        Train("mvq", $"{{\"model\": {{\"kind\": \"mvq\", \"head\": \"global\", \"tokens\": 2, \"codes\": 16, \"codeDim\": 8, {Encoder}, " +
            "\"secondary\": {\"tokens\": 2, \"codeDim\": 8, \"codes\": 16}, " +
            "\"mvq\": {\"hypotheses\": 16, \"evalHypotheses\": 32, \"fHidden\": 16, \"chunk\": 8}}}");
        Directory.CreateDirectory(Images);
        var test = FashionMnist.Load("test");
        for (int i = 0; i < 5; i++) ImageFile.Save(Path.Combine(Images, $"img{i}.png"), test.Image(i * 7), 1, 28, 28);
    }

    private void Train(string name, string config)
    {
        var dir = Path.Combine(Dir.FullName, name);
        Directory.CreateDirectory(dir);
        var cfg = Path.Combine(dir, "config.json");
        File.WriteAllText(cfg, config);
        var (code, _, err) = CliHarness.Run("train", "--config", cfg, "--steps", "2", "--batch", "4", "--limit", "16", "--out", dir);
        Assert.True(code == 0, err);
    }

    public void Dispose() => Dir.Delete(true);
}

[Collection("cli")]
public sealed class CodesTests : IClassFixture<TinyModels>
{
    private readonly TinyModels _m;
    public CodesTests(TinyModels m) => _m = m;

    private string P(string name) => Path.Combine(_m.Dir.FullName, name);

    private static void AssertOneLineError(int code, string err, params string[] mustContain)
    {
        Assert.NotEqual(0, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        foreach (var s in mustContain) Assert.Contains(s, lines[0]);
    }

    [Theory]
    [InlineData("vq", 3)]
    [InlineData("mvq", 2 + 2 + 1)]
    public void DecodeOfEncodeIsTheEvalReconstruction(string kind, int codeLength)
    {
        var model = kind == "vq" ? _m.Vq : _m.Mvq;
        var codes = P($"{kind}-codes.json");
        var (c1, _, e1) = CliHarness.Run("encode", "--model", model, "--input", _m.Images, "--output", codes);
        Assert.True(c1 == 0, e1);
        var (c2, _, e2) = CliHarness.Run("decode", "--model", model, "--codes", codes, "--output", P($"{kind}-dec"));
        Assert.True(c2 == 0, e2);
        var (c3, _, e3) = CliHarness.Run("reconstruct", "--model", model, "--input", _m.Images, "--output", P($"{kind}-rec"));
        Assert.True(c3 == 0, e3);

        // The file: layout from Bottleneck.Segments, one instance per image with its source name.
        var json = JsonNode.Parse(File.ReadAllText(codes))!;
        var segs = json["segments"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()).ToArray();
        Assert.Equal(kind == "vq" ? ["k1"] : ["k1", "k2", "w"], segs);
        var inst = json["instances"]!.AsArray();
        Assert.Equal(5, inst.Count);
        Assert.Equal("img3.png", inst[3]!["source"]!.GetValue<string>());
        var fileCodes = inst.SelectMany(i => i!["code"]!.AsArray().Select(v => v!.GetValue<int>())).ToArray();
        Assert.Equal(5 * codeLength, fileCodes.Length);

        // PNG level: decode's images are reconstruct's images, pixel for pixel; grid.png exists.
        for (int i = 0; i < 5; i++)
            Assert.Equal(ImageFile.Load(P($"{kind}-rec/img{i}.png"), 1, 28, 28), ImageFile.Load(P($"{kind}-dec/{i:D5}.png"), 1, 28, 28));
        Assert.True(File.Exists(P($"{kind}-dec/grid.png")));

        // Float level: the codes are the eval-mode (oracle winner) codes and decoding them gives the eval reconstruction exactly.
        using var m = ModelCheckpoint.Load(model, CpuBackend.Instance);
        var ds = ImageFolder.Load(_m.Images, 1, 28, 28);
        using var session = new InferenceSession(m, 5);
        var (_, recon, evalCodes) = session.Run(ds, 0, 5);
        Assert.Equal(evalCodes, fileCodes);
        Assert.Equal(recon, session.Decode(fileCodes));
    }

    [Fact]
    public void EncodeTakesADataSpecWithLimit()
    {
        var codes = P("spec-codes.json");
        var (c, _, e) = CliHarness.Run("encode", "--model", _m.Mvq, "--input", "fashion-mnist:test", "--limit", "3", "--output", codes);
        Assert.True(c == 0, e);
        var inst = JsonNode.Parse(File.ReadAllText(codes))!["instances"]!.AsArray();
        Assert.Equal(3, inst.Count);
        Assert.Equal("fashion-mnist:test#2", inst[2]!["source"]!.GetValue<string>());
    }

    [Fact]
    public void DecodeRejectsWrongModelOutOfRangeAndMalformed()
    {
        var codes = P("val-codes.json");
        var (c0, _, e0) = CliHarness.Run("encode", "--model", _m.Mvq, "--input", _m.Images, "--output", codes);
        Assert.True(c0 == 0, e0);

        var (code, _, err) = CliHarness.Run("decode", "--model", _m.Vq, "--codes", codes, "--output", P("x1"));
        AssertOneLineError(code, err, "val-codes.json", "different model");

        var node = JsonNode.Parse(File.ReadAllText(codes))!;
        node["instances"]![1]!["code"]![2] = 16; // k2[0]: the vocabulary is 16
        var bad = P("range-codes.json");
        File.WriteAllText(bad, node.ToJsonString());
        (code, _, err) = CliHarness.Run("decode", "--model", _m.Mvq, "--codes", bad, "--output", P("x2"));
        AssertOneLineError(code, err, "range-codes.json", "k2[0] = 16");

        node["instances"]![1]!["code"]![2] = 0;
        node["instances"]![0]!["code"]![4] = 32; // w: the evaluation bank has 32 masks
        File.WriteAllText(bad, node.ToJsonString());
        (code, _, err) = CliHarness.Run("decode", "--model", _m.Mvq, "--codes", bad, "--output", P("x3"));
        AssertOneLineError(code, err, "range-codes.json", "w[0] = 32");

        var broken = P("broken-codes.json");
        File.WriteAllText(broken, File.ReadAllText(codes)[..40]);
        (code, _, err) = CliHarness.Run("decode", "--model", _m.Mvq, "--codes", broken, "--output", P("x4"));
        AssertOneLineError(code, err, "broken-codes.json", "invalid JSON");

        node["instances"]![0]!["code"]![0] = "seven";
        File.WriteAllText(broken, node.ToJsonString());
        (code, _, err) = CliHarness.Run("decode", "--model", _m.Mvq, "--codes", broken, "--output", P("x5"));
        AssertOneLineError(code, err, "broken-codes.json", "malformed");
        Assert.False(Directory.Exists(P("x5")));

        // A duplicated key: JsonNode.Parse accepts it and the first lookup threw ArgumentException (found by FuzzTests).
        var text = File.ReadAllText(codes);
        int at = text.IndexOf("\"instances\"", StringComparison.Ordinal);
        File.WriteAllText(broken, text[..at] + "\"instances\": [], " + text[at..]);
        (code, _, err) = CliHarness.Run("decode", "--model", _m.Mvq, "--codes", broken, "--output", P("x6"));
        AssertOneLineError(code, err, "broken-codes.json", "malformed");
        Assert.False(Directory.Exists(P("x6")));
    }

    [Fact]
    public void TraverseWritesTheGridForMvqAndRefusesVq()
    {
        var png = P("traverse.png");
        var (code, _, err) = CliHarness.Run("traverse", "--model", _m.Mvq, "--input", Path.Combine(_m.Images, "img0.png"), "--output", png, "--random", "5", "--scale", "1");
        Assert.True(code == 0, err);
        // D2 = 8 columns; rows: original + winner, 8 toggles, 5 random masks; 28-pixel cells, 1-pixel padding.
        var info = Image.Identify(png);
        Assert.Equal(8 * 29 + 1, info.Width);
        Assert.Equal(3 * 29 + 1, info.Height);

        (code, _, err) = CliHarness.Run("traverse", "--model", _m.Vq, "--input", Path.Combine(_m.Images, "img0.png"), "--output", P("tv.png"));
        AssertOneLineError(code, err, "MVQ model");
        Assert.False(File.Exists(P("tv.png")));
    }

    [Fact]
    public void EvalReportsBankWinFractionForMvqOnly()
    {
        var (code, output, err) = CliHarness.Run("eval", "--model", _m.Mvq, "--data", "folder:" + _m.Images, "--json");
        Assert.True(code == 0, err);
        var o = JsonNode.Parse(output)!;
        double f = o["bank_win_fraction"]!.GetValue<double>();
        // 5 images can pick at most 5 of the 32 bank masks.
        Assert.InRange(f, 1.0 / 32, 5.0 / 32);
        Assert.Equal(32, o["codes"]!["w"]!["vocabulary"]!.GetValue<int>());
        (code, output, err) = CliHarness.Run("eval", "--model", _m.Vq, "--data", "folder:" + _m.Images, "--json");
        Assert.True(code == 0, err);
        Assert.Null(JsonNode.Parse(output)!["bank_win_fraction"]);
    }
}
