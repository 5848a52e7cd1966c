// The C# prior against the PyTorch reference state tests/data/reference/prior.safetensors (written by
// tools/reference/prior_reference.py state): same weights in; same logits, loss, every gradient, 10-step AdamW
// trajectory and final weights out.
using System.Text.Json;
using MvqNative.Checkpoints;
using MvqNative.Models;
using MvqNative.Optim;
using MvqNative.Prior;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Reference;

public class PriorReferenceStateTests(ITestOutputHelper log)
{
    // Same tolerances and reasons as ReferenceStateTests: float32 sums in another order than PyTorch's.
    private const double ForwardTol = 1e-5, GradTol = 1e-5, TrajectoryTol = 1e-5;
    // After 10 AdamW steps at lr 1e-2, m/sqrt(v) amplifies rounding-level gradient differences up to ~lr per step.
    private const double FinalTol = 1e-4;

    internal static (SafeTensorsContent File, CodeLayout Layout, PriorConfig Config) Load()
    {
        var path = Path.Combine(ReferenceState.DataDirectory, "prior.safetensors");
        var file = SafeTensorsFile.Read(path);
        using var lay = JsonDocument.Parse(file.Metadata["layout"]);
        var segs = new List<CodeSegment>();
        int start = 0;
        foreach (var s in lay.RootElement.EnumerateArray())
        {
            int len = s[1].GetInt32();
            segs.Add(new CodeSegment(s[0].GetString()!, start, len, s[2].GetInt32()));
            start += len;
        }
        using var pc = JsonDocument.Parse(file.Metadata["prior_config"]);
        var r = pc.RootElement;
        var cfg = new PriorConfig { Layers = r.GetProperty("layers").GetInt32(), Heads = r.GetProperty("heads").GetInt32(), Width = r.GetProperty("width").GetInt32(), MlpRatio = r.GetProperty("mlp_ratio").GetInt32() };
        return (file, new CodeLayout(segs), cfg);
    }

    public static IEnumerable<object[]> Devices() => TestDevices.All.Select(d => new object[] { d });

    [Theory]
    [MemberData(nameof(Devices))]
    public void PriorMatchesThePyTorchReference(string device)
    {
        var dev = TestDevices.Get(device);
        var (file, layout, cfg) = Load();
        float[] F(string k) => file.ByName[k].ToFloats();
        using var model = new TransformerPrior(dev, cfg, layout, seed: 0);
        var ps = model.Parameters().ToList();
        var byName = ps.ToDictionary(p => p.Name);
        var refNames = file.Tensors.Select(t => t.Name).Where(n => n.StartsWith("param/", StringComparison.Ordinal)).Select(n => n[6..]).OrderBy(n => n, StringComparer.Ordinal).ToList();
        Assert.Equal(refNames, ps.Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal));
        foreach (var n in refNames)
        {
            Assert.True(file.ByName["param/" + n].Shape.Select(d => (int)d).SequenceEqual(byName[n].Value.Shape), $"{n}: shape differs");
            byName[n].Value.CopyFrom(F("param/" + n));
        }
        var decay = JsonSerializer.Deserialize<string[]>(file.Metadata["decay_params"])!;
        Assert.Equal(decay.OrderBy(n => n, StringComparer.Ordinal), ps.Where(p => p.Decay).Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal));

        int b = int.Parse(file.Metadata["batch"], System.Globalization.CultureInfo.InvariantCulture), t = layout.Length;
        var codes = file.ByName["input/codes"].ToInt32s();
        var hin = new int[b * t]; var htg = new int[b * t];
        layout.ToInputsTargets(codes, hin, htg);
        Assert.Equal(file.ByName["input/inputs"].ToInt32s(), hin);
        Assert.Equal(file.ByName["input/targets"].ToInt32s(), htg);
        using var tin = dev.FromArray(hin, b, t);
        using var ttg = dev.FromArray(htg, b * t);
        using var tb = dev.FromArray(layout.BoundsArray(b), b * t, 2);
        using var opt = new AdamW(ps, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f);
        using var loss = new PriorLoss(dev);
        int steps = int.Parse(file.Metadata["steps"], System.Globalization.CultureInfo.InvariantCulture);
        var losses = new float[steps]; var norms = new float[steps];
        void Report(string what, double err) => log.WriteLine($"{what}: rel err {err:E2}");
        for (int step = 0; step < steps; step++)
        {
            opt.ZeroGrad();
            var logits = model.Forward(tin);
            loss.Compute(logits, ttg, tb);
            losses[step] = (float)(loss.ReadSum() / (b * t));
            if (step == 0)
            {
                Report("fwd/logits", RefCompare.AssertClose("fwd/logits", F("fwd/logits"), logits.ToArray(), ForwardTol));
                Report("loss/total", RefCompare.AssertClose("loss/total", F("loss/total"), [losses[0]], ForwardTol));
            }
            model.Backward(loss.Grad);
            if (step == 0)
                foreach (var n in refNames)
                    Report("grad/" + n, RefCompare.AssertClose("grad/" + n, F("grad/" + n), byName[n].Grad.ToArray(), GradTol));
            opt.Step();
            norms[step] = opt.LastGradNorm;
        }
        Report("train/loss", RefCompare.AssertClose("train/loss", F("train/loss"), losses, TrajectoryTol));
        Report("train/grad_norm", RefCompare.AssertClose("train/grad_norm", F("train/grad_norm"), norms, TrajectoryTol));
        foreach (var n in refNames)
        {
            var want = F("final/" + n); var got = byName[n].Value.ToArray();
            if (n.EndsWith(".attn.qkv.bias", StringComparison.Ordinal))
            {
                // The key bias adds q.b_k to every score of a query: a shift softmax ignores, so its gradient is 0 in
                // exact arithmetic and rounding noise in both programs, which AdamW's m/sqrt(v) turns into steps of
                // up to lr. Its q and v thirds are compared as usual; its k third must stay within steps * lr of the start.
                int c = want.Length / 3;
                Report("final/" + n + "[q,v]", RefCompare.AssertClose("final/" + n + "[q,v]", [.. want[..c], .. want[(2 * c)..]], [.. got[..c], .. got[(2 * c)..]], FinalTol));
                var init = F("param/" + n);
                for (int i = c; i < 2 * c; i++) Assert.True(Math.Abs(got[i] - init[i]) <= steps * 1e-2 * 1.01, $"{n}[{i}] (key bias) moved {got[i] - init[i]}");
                continue;
            }
            Report("final/" + n, RefCompare.AssertClose("final/" + n, want, got, FinalTol));
        }
    }
}
