// PriorDropoutTests.cs: the dropout op (counter-based mask, the same on every backend) and the prior's dropout
// layers: keep rate and scale, identity in evaluation, gradients through a fixed mask (exact resume with dropout:
// PriorTests), and the trainer's refusal to save a diverged prior.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Prior;
using MvqNative.Training;
using Xunit;

namespace MvqNative.Tests.Prior;

public class PriorDropoutTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;
    private static readonly CodeLayout Mvq = new([new("k1", 0, 2, 5), new("k2", 2, 3, 4), new("w", 5, 1, 7)]);

    public static IEnumerable<object[]> Devices => TestDevices.All.Select(d => new object[] { d });

    [Theory]
    [MemberData(nameof(Devices))]
    public void KeepsAboutOneMinusPOfTheElementsScaledAndTheSameMaskOnEveryDevice(string device)
    {
        var b = TestDevices.Get(device);
        const int n = 200_003;
        const float p = 0.25f;
        var host = new float[n];
        var rng = new Random(5);
        for (int i = 0; i < n; i++) host[i] = 0.5f + (float)rng.NextDouble();   // never 0, so a 0 out means dropped
        using var x = b.FromArray(host, n);
        using var y = b.Empty(n);
        var attrs = new DropoutAttrs(p, 0x1234_5678u);
        DropoutOps.Apply.Run(b, [x], [y], attrs);
        var got = y.ToArray();
        int kept = 0;
        for (int i = 0; i < n; i++)
        {
            if (got[i] == 0) continue;
            kept++;
            Assert.Equal(host[i] * attrs.Scale, got[i]);
        }
        // Binomial(n, 0.75): standard deviation ~194 elements; 5 sigma.
        double sd = Math.Sqrt(n * p * (1 - p));
        Assert.InRange(kept, n * (1 - p) - 5 * sd, n * (1 - p) + 5 * sd);
        // The mask is a function of (seed, index) only: the CPU gives the same elements.
        using var xc = Cpu.FromArray(host, n);
        using var yc = Cpu.Empty(n);
        DropoutOps.Apply.Run(Cpu, [xc], [yc], attrs);
        Assert.Equal(yc.ToArray(), got);
    }

    [Fact]
    public void MasksDifferAcrossStepsAndStreamsAndRepeatForTheSameStep()
    {
        static bool[] Mask(ulong stream, long step)
        {
            var t = new DropoutAttrs(0.5f, Dropout.Seed(stream, step)).Threshold;
            uint seed = Dropout.Seed(stream, step);
            return Enumerable.Range(0, 256).Select(i => CpuDropout.Keep(seed, (uint)i, t)).ToArray();
        }
        Assert.Equal(Mask(3, 10), Mask(3, 10));
        Assert.NotEqual(Mask(3, 10), Mask(3, 11));
        Assert.NotEqual(Mask(3, 10), Mask(4, 10));
        Assert.Throws<ArgumentException>(() => DropoutOps.Apply.Run(Cpu, [Cpu.Zeros(4)], [Cpu.Zeros(4)], new DropoutAttrs(1f, 0)));
    }

    [Fact]
    public void ConfigRefusesAProbabilityOutsideZeroToOne()
    {
        foreach (var p in new[] { -0.1f, 1f, float.NaN })
            Assert.Throws<MvqConfigException>(() => new PriorConfig { Dropout = p }.Validate());
        new PriorConfig { Dropout = 0.1f }.Validate();
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void EvaluationModeIgnoresDropoutAndTrainingModeAppliesIt(string device)
    {
        var b = TestDevices.Get(device);
        using var plain = new TransformerPrior(b, new PriorConfig { Layers = 2, Heads = 2, Width = 16 }, Mvq, seed: 4);
        using var dropped = new TransformerPrior(b, new PriorConfig { Layers = 2, Heads = 2, Width = 16, Dropout = 0.3f }, Mvq, seed: 4);
        var inputs = Inputs(5, 1);
        using var tin = b.FromArray(inputs, 5, Mvq.Length);
        plain.SetTraining(false); dropped.SetTraining(false);
        Assert.Equal(plain.Forward(tin).ToArray(), dropped.Forward(tin).ToArray());
        plain.SetTraining(true); dropped.SetTraining(true);
        var reference = plain.Forward(tin).ToArray();
        dropped.DropoutStep = 0;
        var a0 = dropped.Forward(tin).ToArray();
        dropped.DropoutStep = 1;
        var a1 = dropped.Forward(tin).ToArray();
        Assert.NotEqual(reference, a0);
        Assert.NotEqual(a0, a1);
        dropped.DropoutStep = 0;
        Assert.Equal(a0, dropped.Forward(tin).ToArray());
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void GradientsThroughAFixedMaskMatchFiniteDifferences(string device)
    {
        var b = TestDevices.Get(device);
        using var prior = new TransformerPrior(b, new PriorConfig { Layers = 2, Heads = 2, Width = 16, Dropout = 0.3f }, Mvq, seed: 6);
        prior.DropoutStep = 9;
        int batch = 4, n = batch * Mvq.Length;
        var hin = new int[n]; var htg = new int[n];
        Mvq.ToInputsTargets(Codes(batch, 2), hin, htg);
        using var tin = b.FromArray(hin, batch, Mvq.Length);
        using var ttg = b.FromArray(htg, n);
        using var bounds = b.FromArray(Mvq.BoundsArray(batch), n, 2);
        using var loss = new PriorLoss(b);
        double Loss()
        {
            loss.Compute(prior.Forward(tin), ttg, bounds, grad: false);
            return loss.ReadSum() / n;
        }
        foreach (var p in prior.Parameters()) p.Grad.Zero();
        loss.Compute(prior.Forward(tin), ttg, bounds);
        prior.Backward(loss.Grad);
        // Directional derivative along a random direction of the MLP and attention projections, which sit right
        // before the dropout layers: float32 central differences with eps 3e-3 (the loss is smooth for a fixed mask; at 1e-2 the truncation error is 0.5%).
        var rng = new Random(3);
        foreach (var p in prior.Parameters().Where(p => p.Name.EndsWith("proj.weight", StringComparison.Ordinal)))
        {
            var w = p.Value.ToArray();
            var g = p.Grad.ToArray();
            var d = w.Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            double analytic = 0;
            for (int i = 0; i < w.Length; i++) analytic += g[i] * d[i];
            const float eps = 3e-3f;
            p.Value.CopyFrom(w.Select((v, i) => v + eps * d[i]).ToArray());
            double up = Loss();
            p.Value.CopyFrom(w.Select((v, i) => v - eps * d[i]).ToArray());
            double down = Loss();
            p.Value.CopyFrom(w);
            double numeric = (up - down) / (2 * eps);
            Assert.True(Math.Abs(numeric - analytic) <= 2e-3 * Math.Max(1e-2, Math.Abs(analytic)) + 2e-5,
                $"{p.Name}: finite difference {numeric:E4}, backward {analytic:E4}");
        }
    }

    [Fact]
    public void ADivergedPriorIsNeverSaved()
    {
        var codes = Codes(20, 3);
        var tc = new TrainConfig { Steps = 5, Batch = 4, Lr = 1e-3f, MinLr = 1e-4f, WarmupSteps = 1, LogEvery = 100, Seed = 1 };
        var ae = new AutoencoderRef("mvq", "c", "w");
        using var dir = new TempDir();
        using var prior = new TransformerPrior(Cpu, new PriorConfig { Layers = 1, Heads = 2, Width = 8 }, Mvq, seed: 1);
        using var tr = new PriorTrainer(Cpu, prior, tc, codes);
        tr.TrainStep();
        string path = dir.File("prior.safetensors");
        PriorCheckpoint.Save(path, prior, ae, tr);
        var good = File.ReadAllBytes(path);
        // A NaN in the output head makes this step's losses and gradients NaN; no logging step reads them yet.
        var head = prior.Head.Weight;
        var w = head.Value.ToArray(); w[0] = float.NaN; head.Value.CopyFrom(w);
        Assert.Null(tr.TrainStep());
        Assert.True(tr.Diverged);
        var e = Assert.Throws<TrainingDivergedException>(() => PriorCheckpoint.Save(path, prior, ae, tr));
        Assert.Contains("was not written", e.Message);
        Assert.Equal(good, File.ReadAllBytes(path));
    }

    private static int[] Codes(int n, int seed)
    {
        var rng = new Random(seed);
        var c = new int[n * Mvq.Length];
        for (int i = 0; i < c.Length; i++)
        {
            var (lo, hi) = Mvq.Bounds(i % Mvq.Length);
            c[i] = rng.Next(hi - lo);
        }
        return c;
    }

    private static int[] Inputs(int n, int seed)
    {
        var hin = new int[n * Mvq.Length]; var htg = new int[n * Mvq.Length];
        Mvq.ToInputsTargets(Codes(n, seed), hin, htg);
        return hin;
    }
}
