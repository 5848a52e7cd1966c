// `--config` files are read strictly (unknown keys and bad values refused with one line naming
// them), the presets are the same format, and the CLI's error boundary keeps bugs distinct from bad input.
using System.CommandLine;
using MvqNative.Models;
using MvqNative.Training;
using Xunit;

namespace MvqNative.Tests.Cli;

[Collection("cli")]
public sealed class ConfigAndBoundaryTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("mvq-config");
    public void Dispose() => _dir.Delete(true);

    private string Write(string name, string text)
    {
        var p = Path.Combine(_dir.FullName, name);
        File.WriteAllText(p, text);
        return p;
    }

    private (int Code, string Line) Train(string configJson)
    {
        var cfg = Write("c.json", configJson);
        var (code, _, err) = CliHarness.Run("train", "--config", cfg, "--steps", "1", "--out", Path.Combine(_dir.FullName, "run"));
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        return (code, lines[0]);
    }

    [Theory]
    [InlineData("""{"model": {"kind": "vq", "codeDims": 16}}""", "unknown key 'model.codeDims'")]
    [InlineData("""{"model": {"encoder": {"resBlock": 2}}}""", "unknown key 'model.encoder.resBlock'")]
    [InlineData("""{"train": {"stepz": 5}}""", "unknown key 'train.stepz'")]
    [InlineData("""{"modle": {}}""", "unknown key 'modle'")]
    // The PyTorch reference's snake_case model configs are not `--config` files.
    [InlineData("""{"kind": "vq", "code_dim": 16}""", "unknown key 'kind'")]
    [InlineData("""{"model": {"kind": "vqq"}}""", "bad value for 'model.kind'")]
    [InlineData("""{"model": {"quantizer": {"mode": "emma"}}}""", "bad value for 'model.quantizer.mode'")]
    [InlineData("""{"model": {"codes": 1}}""", "codes >= 2")]
    public void BadConfigIsRefusedWithOneLineNamingTheKey(string json, string expected)
    {
        var (code, line) = Train(json);
        Assert.Equal(1, code);
        Assert.StartsWith("error: ", line);
        Assert.Contains("c.json: ", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public void ConfigSectionsReplaceThePresetsAndEnumsReadTheirJsonNames()
    {
        var f = RunConfig.Parse("""{"model": {"kind": "mvq", "head": "global", "loss": "l1", "quantizer": {"mode": "gradient"}, "secondary": {}, "mvq": {}}, "train": {"steps": 7}}""",
            "test", new ModelConfig(), new TrainConfig());
        Assert.Equal(ModelKind.Mvq, f.Model.Kind);
        Assert.Equal(HeadKind.Global, f.Model.Head);
        Assert.Equal(MvqNative.Layers.LossKind.L1, f.Model.Loss);
        Assert.Equal(MvqNative.Quantizers.VqMode.Gradient, f.Model.Quantizer.Mode);
        Assert.Equal(7, f.Train.Steps);
        // The JSON keeps the lowercase names (checkpoints and codes.json hash it).
        Assert.Contains("\"kind\":\"mvq\"", f.Model.ToJson());
        Assert.Contains("\"mode\":\"gradient\"", f.Model.ToJson());
    }

    [Fact]
    public void EveryPresetIsAValidConfigFileThatRoundTrips()
    {
        Assert.Equal(["fmnist-mvq", "fmnist-mvq-global", "fmnist-vq", "fmnist-vq-global"], Presets.Names);
        foreach (var name in Presets.Names)
        {
            var p = Presets.Get(name);
            Assert.False(string.IsNullOrEmpty(p.Description));
            Assert.Equal(p.Model.ToJson(), ModelConfig.FromJson(p.Model.ToJson()).ToJson());
            // A preset file is also a valid --config file.
            var f = RunConfig.Parse(Presets.Json(name), name, new ModelConfig(), new TrainConfig());
            Assert.Equal(p.Model.ToJson(), f.Model.ToJson());
        }
    }

    [Fact]
    public void ABugKeepsItsStackTraceInAFileNamedInTheOneLine()
    {
        var root = new RootCommand("mvq");
        var cmd = new Command("boom");
        cmd.SetAction(_ => { Boom(); return 0; });
        root.Subcommands.Add(cmd);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var err = new StringWriter();
        Console.SetError(err);
        int code;
        try { code = MvqNative.Cli.Cli.Run(root, ["boom"]); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
        var line = Assert.Single(err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(MvqNative.Cli.Cli.InternalErrorExit, code);
        Assert.StartsWith("error: internal error (a bug in mvq): System.InvalidOperationException: planted", line);
        var path = line[(line.IndexOf("stack trace in ", StringComparison.Ordinal) + "stack trace in ".Length)..].TrimEnd(')', '\r');
        try { Assert.Contains(nameof(Boom), File.ReadAllText(path)); }
        finally { File.Delete(path); }
    }

    private static void Boom() => throw new InvalidOperationException("planted");
}
