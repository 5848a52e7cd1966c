// HostileInputTests.cs: the hostile-input suite of issue 16, one region per class of defect. Every case makes its own
// crafted files, expects exit 1 with one "error: FILE: problem" line naming the file (or success where the fix is to
// make it work), leaves every file that existed before unchanged, and bounds time (a hang guard) and, where the input
// is a bomb, the peak resident memory of the mvq process.
using System.Globalization;
using MvqNative.Backends;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Models;
using MvqNative.Tests.Cli;
using MvqNative.Training;
using Xunit;
using static MvqNative.Tests.Hostile.HostileKit;

namespace MvqNative.Tests.Hostile;

/// <summary>One small trained model shared by the suite (trained once, copied before any case changes it).</summary>
public sealed class HostileModel : IDisposable
{
    public HostileModel()
    {
        Dir = Directory.CreateTempSubdirectory("mvq-hostile-model").FullName;
        var (c, _, e) = CliHarness.Run("train", "--preset", "fmnist-vq-global", "--steps", "4", "--batch", "4", "--limit", "32", "--out", Dir);
        if (c != 0) throw new InvalidOperationException("training the suite's model failed: " + e);
    }

    public string Dir { get; }
    public string Path => System.IO.Path.Combine(Dir, "model.safetensors");
    public void Dispose() { try { Directory.Delete(Dir, true); } catch (IOException) { } }
}

[Collection("cli")]
public sealed class HostileInputTests : IClassFixture<HostileModel>, IDisposable
{
    private readonly HostileModel _model;
    private readonly TempDir _tmp = new();

    public HostileInputTests(HostileModel model) => _model = model;
    public void Dispose() => _tmp.Dispose();

    private string F(string name) => _tmp.File(name);

    private string CopyModel(string name = "m.safetensors")
    {
        var p = F(name);
        File.Copy(_model.Path, p, overwrite: true);
        return p;
    }

    private string Folder(string name)
    {
        var d = F(name);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>Rewrites a checkpoint with some metadata values replaced (and tensors optionally changed).</summary>
    private string WithMetadata(string name, Action<Dictionary<string, string>> edit, Func<SafeTensor, SafeTensor>? tensor = null)
    {
        var src = SafeTensorsFile.Read(_model.Path);
        var md = src.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value);
        edit(md);
        var p = F(name);
        SafeTensorsFile.Write(p, src.Tensors.Select(t => tensor?.Invoke(t) ?? t), md);
        return p;
    }

    // ===================================================================== 1. divergence never writes a checkpoint

    [Fact]
    public void C1_DivergingRunKeepsTheLastGoodCheckpoint()
    {
        var outDir = Folder("run");
        File.Copy(_model.Path, System.IO.Path.Combine(outDir, "model.safetensors"));
        var cfg = F("cfg.json");
        // Checkpoints every 2 steps, logs never: the non-finite state is only seen through the device-side flag.
        File.WriteAllText(cfg, """{"train":{"logEvery":1000,"checkpointEvery":2}}""");
        var before = Snapshot(_tmp.Path);
        var r = InProcess("train", "--preset", "fmnist-vq-global", "--config", cfg, "--lr", "1e30", "--steps", "6", "--batch", "4", "--limit", "16", "--out", outDir, "--force");
        AssertRefused(r, System.IO.Path.Combine(outDir, "model.safetensors"), "diverged");
        Assert.Contains("kept as it was", r.Err);
        AssertUnchanged(before);
    }

    public static TheoryData<string> Devices() => new(TestDevices.All);

    [Theory]
    [MemberData(nameof(Devices))]
    public void C1_SaveRefusesAfterANonFiniteStepOnEveryDevice(string device)
    {
        Backend backend = TestDevices.Get(device);
        var data = FashionMnist.Load("train").Subset(16);
        var tc = new TrainConfig { Steps = 4, Batch = 4, Lr = 1e30f, WarmupSteps = 0, LogEvery = 1000 };
        using var model = new Autoencoder(backend, EndToEnd.TrainingTests.SmallVq(HeadKind.Global), 1);
        using var trainer = new Trainer(backend, model, tc, data);
        var path = F($"ckpt-{device}.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        for (int i = 0; i < 3; i++) trainer.TrainStep();
        // The flag lives on the device and is read here, at save time, once.
        Assert.True(trainer.Diverged);
        var e = Assert.Throws<TrainingDivergedException>(() => ModelCheckpoint.Save(path, model, trainer));
        Assert.Contains("not finite", e.Message);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
    }

    // ===================================================================== 2. decompression bombs

    [Fact]
    public void C2_AnimatedGifBombDecodesOneFrameInBoundedMemory()
    {
        var gif = F("bomb.gif");
        File.WriteAllBytes(gif, GifBomb(4096, 150));
        var r = Child(null, "reconstruct", "--model", _model.Path, "--input", gif, "--output", F("bomb-rec.png"));
        // One 4096x4096 frame is a legal image: it is decoded (first frame only) and reconstructed.
        Assert.True(r.Code == 0, r.Err);
        AssertPeakBelow(r, 1024);
    }

    [Fact]
    public void C2_PngWithAZtxtBombIsNotInflated()
    {
        var png = F("ztxt.png");
        File.WriteAllBytes(png, PngWithZtxtBomb(256));
        Assert.True(new FileInfo(png).Length < 2 << 20);
        var r = Child(null, "reconstruct", "--model", _model.Path, "--input", png, "--output", F("ztxt-rec.png"));
        Assert.True(r.Code == 0, r.Err);
        AssertPeakBelow(r, 400);
    }

    [Fact]
    public void C2_GzipIdxBombIsRefusedFromItsHeader()
    {
        var idx = F("bomb-idx3-ubyte.gz");
        File.WriteAllBytes(idx, GzipIdx([4096, 512, 512], 128));
        var before = Snapshot(_tmp.Path);
        var r = Child(null, "eval", "--model", _model.Path, "--data", "idx:" + idx);
        AssertRefused(r, idx, "limit");
        AssertPeakBelow(r, 400);
        AssertUnchanged(before);
    }

    [Fact]
    public void C2_GzipIdxShorterThanItsHeaderIsTruncated()
    {
        var idx = F("short-idx3-ubyte.gz");
        File.WriteAllBytes(idx, GzipIdx([100, 28, 28], 0));
        AssertRefused(InProcess("eval", "--model", _model.Path, "--data", "idx:" + idx), idx, "truncated");
    }

    // ===================================================================== 5. corrupt images

    public static TheoryData<string> CorruptImages() => new("half.jpg", "forged.jpg", "nopixels.bmp", "short.bmp", "cut.png", "badcrc.png", "cut.gif");

    [Theory]
    [MemberData(nameof(CorruptImages))]
    public void C5_CorruptImagesAreRefused(string name)
    {
        var path = F(name);
        byte[] b = name switch
        {
            "half.jpg" => Jpeg()[..(Jpeg().Length / 2)],
            "forged.jpg" => Forge(Jpeg(), 4000, 4000),
            "nopixels.bmp" => Bmp()[..54],
            "short.bmp" => Bmp()[..(Bmp().Length - 40)],
            "cut.png" => Png()[..(Png().Length - 20)],
            "badcrc.png" => Flip(Png(), 40),
            "cut.gif" => Gif()[..(Gif().Length / 2)],
            _ => throw new ArgumentException(name),
        };
        File.WriteAllBytes(path, b);
        var before = Snapshot(_tmp.Path);
        var r = InProcess("reconstruct", "--model", _model.Path, "--input", path, "--output", F("rec.png"));
        AssertRefused(r, path);
        Assert.False(File.Exists(F("rec.png")));
        AssertUnchanged(before);

        static byte[] Flip(byte[] x, int at) { var y = (byte[])x.Clone(); y[at] ^= 0x10; return y; }
        // The frame header (SOF0) of the JPEG made to declare a larger image than its scan data codes.
        static byte[] Forge(byte[] x, int w, int h)
        {
            var y = (byte[])x.Clone();
            for (int i = 2; i + 9 < y.Length; i++)
                if (y[i] == 0xFF && y[i + 1] == 0xC0)
                {
                    y[i + 5] = (byte)(h >> 8); y[i + 6] = (byte)h; y[i + 7] = (byte)(w >> 8); y[i + 8] = (byte)w;
                    return y;
                }
            throw new InvalidOperationException("no SOF0");
        }
    }

    [Fact]
    public void C5_ValidImagesOfEveryFormatStillLoad()
    {
        var dir = Folder("valid");
        File.WriteAllBytes(System.IO.Path.Combine(dir, "a.png"), Png());
        File.WriteAllBytes(System.IO.Path.Combine(dir, "b.jpg"), Jpeg());
        File.WriteAllBytes(System.IO.Path.Combine(dir, "c.bmp"), Bmp());
        File.WriteAllBytes(System.IO.Path.Combine(dir, "d.gif"), Gif());
        var ds = ImageFolder.Load(dir, 1, 28, 28);
        Assert.Equal(4, ds.Count);
    }

    // ===================================================================== 6. output collisions

    [Fact]
    public void C6_SameNamesOfDifferentFormatsGetDistinctOutputs()
    {
        var dir = Folder("shirts");
        File.WriteAllBytes(System.IO.Path.Combine(dir, "shirt.png"), Png());
        File.WriteAllBytes(System.IO.Path.Combine(dir, "shirt.gif"), Gif());
        File.WriteAllBytes(System.IO.Path.Combine(dir, "shirt.bmp"), Bmp());
        var outDir = F("recs");
        var r = InProcess("reconstruct", "--model", _model.Path, "--input", dir, "--output", outDir);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("wrote 3 reconstructions", r.Out);
        var written = Directory.GetFiles(outDir, "*.png").Select(f => System.IO.Path.GetFileName(f)!).Order().ToArray();
        Assert.Equal(["shirt_bmp.png", "shirt_gif.png", "shirt_png.png"], written);
    }

    [Fact]
    public void C6_OutputEqualToAnInputIsRefused()
    {
        var dir = Folder("in");
        var png = System.IO.Path.Combine(dir, "shirt.png");
        File.WriteAllBytes(png, Png());
        var before = Snapshot(_tmp.Path);
        AssertRefused(InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", png), png, "input");
        AssertRefused(InProcess("reconstruct", "--model", _model.Path, "--input", dir, "--output", dir), png, "input");
        AssertRefused(InProcess("encode", "--model", _model.Path, "--input", png, "--output", png), png, "input");
        AssertRefused(InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", _model.Path), _model.Path, "input");
        AssertUnchanged(before);
    }

    // ===================================================================== 7. locking and replacing

    [Fact]
    public void C7_ASecondRunOnALockedFolderIsRefused()
    {
        var outDir = Folder("locked");
        using var held = MvqNative.IO.OutputFolder.Acquire(outDir, "test");
        var before = Snapshot(_tmp.Path);
        var r = InProcess("train", "--preset", "fmnist-vq-global", "--steps", "1", "--batch", "4", "--limit", "8", "--out", outDir);
        AssertRefused(r, outDir, "another mvq run");
        AssertUnchanged(before);
    }

    [Fact]
    public void C7_AnExistingModelIsOnlyReplacedWhenAsked()
    {
        var outDir = Folder("existing");
        var ckpt = System.IO.Path.Combine(outDir, "model.safetensors");
        File.Copy(_model.Path, ckpt);
        var before = Snapshot(_tmp.Path);
        var r = InProcess("train", "--preset", "fmnist-vq-global", "--steps", "1", "--batch", "4", "--limit", "8", "--out", outDir);
        AssertRefused(r, ckpt, "--force");
        AssertUnchanged(before);
        var forced = InProcess("train", "--preset", "fmnist-vq-global", "--steps", "1", "--batch", "4", "--limit", "8", "--out", outDir, "--force");
        Assert.True(forced.Code == 0, forced.Err);
    }

    // ===================================================================== 8. late failures and cadence

    [Fact]
    public void C8_AnUnwritableOutputFailsBeforeAnyDataIsRead()
    {
        var file = F("plain-file");
        File.WriteAllText(file, "x");
        var before = Snapshot(_tmp.Path);
        // The data spec is bad too: the output must be the first thing refused.
        var r = InProcess("train", "--preset", "fmnist-vq-global", "--data", "folder:" + F("no-such-folder"), "--out", System.IO.Path.Combine(file, "run"));
        AssertRefused(r, "plain-file", "cannot create");
        AssertUnchanged(before);
    }

    [Fact]
    public void C8_AKilledRunLeavesItsLastTimedCheckpoint()
    {
        var outDir = Folder("killed");
        var cfg = F("cadence.json");
        // Steps never trigger a checkpoint; time does (every 0.02 minutes).
        File.WriteAllText(cfg, """{"train":{"checkpointEvery":0,"checkpointMinutes":0.02,"logEvery":1}}""");
        var ckpt = System.IO.Path.Combine(outDir, "model.safetensors");
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { MvqDll, "train", "--preset", "fmnist-vq-global", "--config", cfg, "--steps", "100000", "--batch", "4", "--limit", "16", "--out", outDir }) psi.ArgumentList.Add(a);
        psi.Environment["MVQ_THREADS"] = "1";
        using var p = System.Diagnostics.Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync(); _ = p.StandardError.ReadToEndAsync();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(ckpt) && !p.HasExited && sw.Elapsed.TotalSeconds < HangSeconds) Thread.Sleep(100);
        Thread.Sleep(300);
        p.Kill(entireProcessTree: true); // kill -9
        p.WaitForExit();
        Assert.True(File.Exists(ckpt), "no checkpoint was written before the kill");
        var st = SafeTensorsFile.Read(ckpt);
        Assert.True(int.Parse(st.Metadata["step"], CultureInfo.InvariantCulture) > 0);
        // Resuming it works, and the next run on the folder clears temp files left by the killed one.
        var stale = System.IO.Path.Combine(outDir, ".model.safetensors.999999999.0123456789abcdef0123456789abcdef.tmp");
        File.WriteAllText(stale, "left by a killed write");
        var r = InProcess("train", "--resume", ckpt, "--steps", (int.Parse(st.Metadata["step"], CultureInfo.InvariantCulture) + 2).ToString(CultureInfo.InvariantCulture), "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        Assert.False(File.Exists(stale));
    }

    // ===================================================================== 9. special files

    [Fact]
    public void C9_FifosAreRefusedNotWaitedOn()
    {
        var fifo = F("pipe");
        MkFifo(fifo);
        var dir = Folder("withfifo");
        MkFifo(System.IO.Path.Combine(dir, "x.png"));
        var cases = new (string What, string[] Args)[]
        {
            ("--model", ["eval", "--model", fifo]),
            ("--config", ["train", "--config", fifo, "--out", F("o1")]),
            ("--codes", ["decode", "--model", _model.Path, "--codes", fifo, "--output", F("o2")]),
            ("idx:", ["eval", "--model", _model.Path, "--data", "idx:" + fifo]),
            ("folder", ["eval", "--model", _model.Path, "--data", "folder:" + dir]),
            ("--resume", ["train", "--resume", fifo, "--out", F("o3")]),
        };
        foreach (var (what, args) in cases)
        {
            var r = Child(null, args);
            Assert.False(r.TimedOut, $"{what}: hung on a FIFO");
            AssertRefused(r, what == "folder" ? "x.png" : fifo, "not a regular file");
        }
    }

    [Fact]
    public void C9_ASymlinkToDevZeroInAFolderIsRefused()
    {
        var dir = Folder("zero");
        File.WriteAllBytes(System.IO.Path.Combine(dir, "a.png"), Png());
        File.CreateSymbolicLink(System.IO.Path.Combine(dir, "z.png"), "/dev/zero");
        var r = Child(null, "eval", "--model", _model.Path, "--data", "folder:" + dir);
        AssertRefused(r, "z.png", "character device");
        AssertPeakBelow(r, 400);
    }

    // ===================================================================== 10. resume

    [Fact]
    public void C10_ResumeOnADatasetOfAnotherSizeStartsANewDataOrder()
    {
        var outDir = Folder("resume-size");
        var ckpt = System.IO.Path.Combine(outDir, "model.safetensors");
        File.Copy(_model.Path, ckpt);
        var r = InProcess("train", "--resume", ckpt, "--steps", "6", "--limit", "5", "--batch", "4", "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("new data order", r.Out);
    }

    [Fact]
    public void C10_ResumeWithAnotherModelConfigIsRefusedNamingTheChange()
    {
        var ckpt = CopyModel();
        var r = InProcess("train", "--resume", ckpt, "--preset", "fmnist-vq", "--steps", "6", "--out", Folder("resume-cfg"));
        AssertRefused(r, ckpt, "head \"global\" -> \"grid\"");
    }

    public static TheoryData<string, string, string> BadTrainingState() => new()
    {
        { "step", "1099511627776", "outside" },
        { "step", "-3", "outside" },
        { "optimizer_step", "x", "not an integer" },
        { "batcher_epoch", "-1", "outside" },
        { "batcher_position", "99999999999", "outside" },
    };

    [Theory]
    [MemberData(nameof(BadTrainingState))]
    public void C10_TrainingStateIsCheckedBeforeItIsUsed(string key, string value, string expect)
    {
        var ckpt = WithMetadata($"state-{key}.safetensors", md => md[key] = value);
        var outDir = Folder("resume-state-" + key);
        var before = Snapshot(_tmp.Path);
        AssertRefused(InProcess("train", "--resume", ckpt, "--steps", "8", "--out", outDir), ckpt, expect);
        AssertUnchanged(before);
    }

    [Fact]
    public void C10_NonFiniteOptimizerMomentsAreRefused()
    {
        var ckpt = WithMetadata("nan-moments.safetensors", _ => { }, t => t.Name.StartsWith("optim.v.", StringComparison.Ordinal)
            ? SafeTensor.FromFloats(t.Name, t.Shape, Enumerable.Repeat(float.NaN, (int)t.ElementCount).ToArray()) : t);
        AssertRefused(InProcess("train", "--resume", ckpt, "--steps", "8", "--out", Folder("resume-nan")), ckpt, "non-finite");
    }

    // ===================================================================== 12. messages

    [Theory]
    [InlineData("--steps", "abc")]
    [InlineData("--steps", "99999999999")]
    [InlineData("--lr", "fast")]
    public void C12_ABadNumberIsOneLineInWords(string option, string value)
    {
        var r = InProcess("train", option, value, "--out", F("o"));
        AssertRefused(r, option, "is not a");
        Assert.DoesNotContain("System.", r.Err);
        Assert.DoesNotContain("Usage", r.Err + r.Out);
    }

    [Fact]
    public void C12_LongOutputNamesFitTheTempFile()
    {
        var png = F("in.png");
        File.WriteAllBytes(png, Png());
        foreach (int len in new[] { 212, 240, 255 })
        {
            var name = new string('n', len - 4) + ".png";
            var r = InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", F(name));
            Assert.True(r.Code == 0, $"{len} bytes: {r.Err}");
            Assert.True(File.Exists(F(name)));
        }
    }

    [Fact]
    public void C12_WriteErrorsNameTheTargetNotATempFile()
    {
        var png = F("in.png");
        File.WriteAllBytes(png, Png());
        var target = System.IO.Path.Combine(F("missing-folder"), "out.png");
        var r = InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", target);
        AssertRefused(r, target);
        Assert.DoesNotContain(".tmp", r.Err);
    }

    [Fact]
    public void C12_ConvertIsARealOption()
    {
        var png = F("colour.png");
        using (var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(16, 16, new SixLabors.ImageSharp.PixelFormats.Rgb24(200, 10, 10)))
            SixLabors.ImageSharp.ImageExtensions.SaveAsPng(img, png);
        var refused = InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", F("c.png"));
        AssertRefused(refused, png, "--convert gray");
        var ok = InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", F("c.png"), "--convert", "gray");
        Assert.True(ok.Code == 0, ok.Err);
        AssertRefused(InProcess("reconstruct", "--model", _model.Path, "--input", png, "--output", F("c2.png"), "--convert", "rgb"), "--convert rgb");
    }

    // ===================================================================== 11. degenerate figures

    [Fact]
    public void C11_EvalOfNoImagesIsRefusedNotNaN()
    {
        var idx = F("empty-idx3-ubyte");
        File.WriteAllBytes(idx, IdxHeader(0, 28, 28));
        var r = InProcess("eval", "--model", _model.Path, "--data", "idx:" + idx, "--json");
        AssertRefused(r, idx, "no images");
        Assert.DoesNotContain("NaN", r.Out);
    }

    [Fact]
    public void C3_ABatchLargerThanTheDatasetIsClamped()
    {
        var r = Child(null, "train", "--preset", "fmnist-vq-global", "--steps", "1", "--batch", "100000", "--limit", "16", "--out", Folder("clamp"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("using 16", r.Out);
        AssertPeakBelow(r, 1024);
    }

    [Fact]
    public void C4_TraverseRandomIsBounded()
    {
        var r = InProcess("traverse", "--model", _model.Path, "--input", "fashion-mnist:test", "--output", F("t.png"), "--random", "2147483647");
        AssertRefused(r, "--random");
    }

    // ===================================================================== 3. values checked before they are trusted

    public static TheoryData<string, string> HugeCheckpointConfigs() => new()
    {
        { "\"codes\":100000000", "codes must be from 2 to 65536" },
        { "\"encoder\":{\"channels\":[32,64],\"resBlocks\":1000000,\"resHidden\":32}", "encoder.resBlocks" },
        { "\"kind\":\"mvq\",\"secondary\":{\"tokens\":2,\"codeDim\":16,\"codes\":64},\"mvq\":{\"evalHypotheses\":100000000}", "mvq.evalHypotheses" },
        { "\"codes\":60000", "but the file holds" },
        { "\"encoder\":{\"channels\":[4096,4096],\"resBlocks\":8,\"resHidden\":4096}", "over the" },
    };

    [Theory]
    [MemberData(nameof(HugeCheckpointConfigs))]
    public void C3_CheckpointConfigIsBoundedBeforeAnythingIsAllocated(string patch, string expect)
    {
        var ckpt = WithMetadata("huge.safetensors", md =>
        {
            var cfg = System.Text.Json.Nodes.JsonNode.Parse(md["model_config"])!.AsObject();
            var p = System.Text.Json.Nodes.JsonNode.Parse("{" + patch + "}")!.AsObject();
            foreach (var (k, v) in p.ToList()) { p.Remove(k); cfg[k] = v; }
            md["model_config"] = cfg.ToJsonString();
        });
        var r = Child(null, "eval", "--model", ckpt, "--limit", "4");
        AssertRefused(r, ckpt, expect);
        AssertPeakBelow(r, 400);
    }

    [Fact]
    public void C3_AModelTooLargeForTheMemoryLimitIsRefusedWithTheEstimate()
    {
        var cfg = F("big.json");
        File.WriteAllText(cfg, """{"model":{"image":{"channels":1,"height":1024,"width":1024},"encoder":{"channels":[512,1024],"resBlocks":8,"resHidden":1024}}}""");
        Folder("imgs-big");
        File.WriteAllBytes(System.IO.Path.Combine(F("imgs-big"), "a.png"), Png());
        var r = Child(null, "train", "--config", cfg, "--steps", "1", "--batch", "64", "--data", "folder:" + F("imgs-big"), "--out", F("big-out"));
        AssertRefused(r, cfg, "limit (raise it with MVQ_MAX_MODEL_MB)");
        AssertPeakBelow(r, 400);
    }

    // ===================================================================== 4. wrong types end in one line

    public static TheoryData<string, string> BadConfigs() => new()
    {
        { """{"train":{"steps":"many"}}""", "steps" },
        { """{"train":{"steps":1e10}}""", "steps" },
        { """{"train":{"logEvery":0}}""", "train.logEvery" },
        { """{"model":null}""", "model" },
        { """{"train":null}""", "train" },
        { """{"model":{"encoder":null}}""", "encoder" },
        { """{"model":{"image":{"channels":1,"height":28,"width":28.5}}}""", "width" },
        { """{"model":{"codes":99999999999999999999}}""", "codes" },
        { """[1, 2]""", "JSON object" },
        { """{"model":{"kind":5}}""", "kind" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void C4_WrongTypedConfigIsOneLine(string json, string expect)
    {
        var cfg = F("bad.json");
        File.WriteAllText(cfg, json);
        var r = InProcess("train", "--config", cfg, "--steps", "1", "--out", F("o-bad"));
        AssertRefused(r, cfg, expect);
    }

    public static TheoryData<string, string, string> BadMetadata() => new()
    {
        { "model_config", """{"codes":"x"}""", "codes" },
        { "model_config", """{"encoder":null}""", "encoder" },
        { "model_config", "[]", "model_config" },
        { "train_config", """{"lr":"fast"}""", "train_config" },
        { "train_config", """{"logEvery":0}""", "train.logEvery" },
    };

    [Theory]
    [MemberData(nameof(BadMetadata))]
    public void C4_WrongTypedCheckpointMetadataIsOneLine(string key, string value, string expect)
    {
        var ckpt = WithMetadata($"md-{key}.safetensors", md => md[key] = value);
        var r = InProcess("train", "--resume", ckpt, "--steps", "9", "--out", F("o-md"));
        AssertRefused(r, ckpt, expect);
    }

    // ===================================================================== 11. degenerate settings

    [Theory]
    [InlineData("--lr", "NaN", "--lr must be a finite number")]
    [InlineData("--lr", "-1", "--lr must be a finite number")]
    [InlineData("--batch", "0", "--batch must be from 1")]
    [InlineData("--batch", "2000000", "--batch must be from 1")]
    public void C11_DegenerateNumbersAreRefused(string option, string value, string expect)
    {
        var r = InProcess("train", "--preset", "fmnist-vq-global", option, value, "--steps", "1", "--out", F("o-deg"));
        AssertRefused(r, expect);
    }

    [Theory]
    [InlineData("beta1", "1.0")]
    [InlineData("beta2", "1.5")]
    [InlineData("clipNorm", "0")]
    [InlineData("checkpointEvery", "-1")]
    [InlineData("checkpointMinutes", "-1")]
    [InlineData("warmupSteps", "-5")]
    [InlineData("minLr", "-1")]
    public void C11_DegenerateTrainSettingsAreRefused(string key, string value)
    {
        var cfg = F("deg.json");
        File.WriteAllText(cfg, "{\"train\":{\"" + key + "\":" + value + "}}");
        AssertRefused(InProcess("train", "--config", cfg, "--out", F("o-deg2")), cfg, "train." + key);
    }
}
