// PriorTests.cs: the prior's library pieces: code layout, KV-cache sampling against the full forward, sampling
// knobs, exact resume of training, held-out evaluation and the unigram baselines.
using MvqNative.Backends.Cpu;
using MvqNative.Models;
using MvqNative.Prior;
using MvqNative.Training;
using Xunit;

namespace MvqNative.Tests.Prior;

public class PriorTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;
    private static readonly CodeLayout Mvq = new([new("k1", 0, 2, 5), new("k2", 2, 3, 4), new("w", 5, 1, 7)]);
    private static PriorConfig Small => new() { Layers = 2, Heads = 2, Width = 16 };

    [Fact]
    public void LayoutGivesEachSegmentItsOwnRangeAndAStartToken()
    {
        Assert.Equal(16, Mvq.Vocabulary);
        Assert.Equal(16, Mvq.StartToken);
        Assert.Equal(6, Mvq.Length);
        Assert.Equal((0, 5), Mvq.Bounds(1));
        Assert.Equal((5, 9), Mvq.Bounds(2));
        Assert.Equal((9, 16), Mvq.Bounds(5));
        var inputs = new int[6]; var targets = new int[6];
        Mvq.ToInputsTargets([4, 0, 3, 1, 2, 6], inputs, targets);
        Assert.Equal([4, 0, 8, 6, 7, 15], targets);
        Assert.Equal([16, 4, 0, 8, 6, 7], inputs);
        Assert.Throws<ArgumentOutOfRangeException>(() => Mvq.ToInputsTargets([5, 0, 0, 0, 0, 0], inputs, targets));
    }

    [Fact]
    public void GreedyKvCacheSamplingAgreesWithTheFullForward()
    {
        using var prior = new TransformerPrior(Cpu, Small, Mvq, seed: 3);
        // Larger weights than the default init so that the argmax depends on the prefix.
        foreach (var p in prior.Parameters().Where(p => p.Decay)) p.Value.CopyFrom(p.Value.ToArray().Select(v => v * 20).ToArray());
        using var sampler = new PriorSampler(prior);
        var codes = sampler.Sample(7, 3, new SamplingOptions(TopK: 1));
        var hin = new int[codes.Length]; var htg = new int[codes.Length];
        Mvq.ToInputsTargets(codes, hin, htg);
        using var tin = Cpu.FromArray(hin, 7, Mvq.Length);
        var logits = prior.Forward(tin).ToArray();
        int v = Mvq.Vocabulary;
        for (int n = 0; n < codes.Length; n++)
        {
            var (lo, hi) = Mvq.Bounds(n % Mvq.Length);
            int best = lo;
            for (int j = lo; j < hi; j++) if (logits[n * v + j] > logits[n * v + best]) best = j;
            Assert.True(best - lo == codes[n], $"token {n}: the full forward's argmax is {best - lo}, the KV-cache sampler drew {codes[n]}");
        }
    }

    [Fact]
    public void SamplesStayInsideTheirSegmentAndDoNotDependOnTheBatch()
    {
        using var prior = new TransformerPrior(Cpu, Small, Mvq, seed: 4);
        using var sampler = new PriorSampler(prior);
        var a = sampler.Sample(9, 9, new SamplingOptions(Temperature: 2f, Seed: 5));
        var b = sampler.Sample(9, 2, new SamplingOptions(Temperature: 2f, Seed: 5));
        Assert.Equal(a, b);
        for (int n = 0; n < a.Length; n++)
        {
            var (lo, hi) = Mvq.Bounds(n % Mvq.Length);
            Assert.InRange(a[n], 0, hi - lo - 1);
        }
        Assert.NotEqual(a, sampler.Sample(9, 9, new SamplingOptions(Temperature: 2f, Seed: 6)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PackedWeightsDrawTheSameCodesAsTheLinearOp(bool mvq)
    {
        // Width 72 and 3 heads: projections of 216, 72 and 288 columns (tails of the GEMM's 32-column panels).
        var layout = mvq ? Mvq : new CodeLayout([new("k", 0, 7, 40)]);
        using var prior = new TransformerPrior(Cpu, new PriorConfig { Layers = 2, Heads = 3, Width = 72 }, layout, seed: 8);
        using var packed = new PriorSampler(prior, packWeights: true);
        using var plain = new PriorSampler(prior, packWeights: false);
        var opt = new SamplingOptions(Temperature: 1.5f, Seed: 9);
        var a = packed.Sample(21, 8, opt);
        Assert.True(packed.PackMilliseconds > 0, "the packed sampler did not pack");
        Assert.Equal(0, plain.PackMilliseconds);
        Assert.Equal(plain.Sample(21, 8, opt), a);
        Assert.Equal(a, packed.Sample(21, 8, opt));   // the packs carry over to the next call
    }

    [Fact]
    public void TopKTopPAndTemperatureRestrictTheDraw()
    {
        float[] logits = [0f, 3f, 1f, 2.9f];
        var probs = new float[4]; var order = new int[4];
        var rng = new Random(1);
        for (int i = 0; i < 200; i++)
        {
            Assert.Equal(1, PriorSampler.Draw(logits, new SamplingOptions(TopK: 1), rng, probs, order));
            Assert.Contains(PriorSampler.Draw(logits, new SamplingOptions(TopK: 2), rng, probs, order), new[] { 1, 3 });
            // p(1) ~ 0.45, p(3) ~ 0.41: top-p 0.5 keeps both, 0.3 keeps only the first.
            Assert.Contains(PriorSampler.Draw(logits, new SamplingOptions(TopP: 0.5f), rng, probs, order), new[] { 1, 3 });
            Assert.Equal(1, PriorSampler.Draw(logits, new SamplingOptions(TopP: 0.3f), rng, probs, order));
            Assert.Equal(1, PriorSampler.Draw(logits, new SamplingOptions(Temperature: 1e-3f), rng, probs, order));
        }
        Assert.Throws<MvqUsageException>(() => new SamplingOptions(Temperature: 0).Validate());
        Assert.Throws<MvqUsageException>(() => new SamplingOptions(TopP: 0).Validate());
        Assert.Throws<MvqUsageException>(() => new SamplingOptions(TopP: 1.01f).Validate());
    }

    private static int[] RandomCodes(int n, int seed)
    {
        var rng = new Random(seed);
        var c = new int[n * Mvq.Length];
        for (int i = 0; i < c.Length; i++)
        {
            var (lo, hi) = Mvq.Bounds(i % Mvq.Length);
            // Skewed and correlated with the previous token, so a prior has something to learn.
            c[i] = i % Mvq.Length == 0 ? rng.Next(hi - lo) : (c[i - 1] + (rng.NextDouble() < 0.8 ? 0 : rng.Next(hi - lo))) % (hi - lo);
        }
        return c;
    }

    // Dropout 0.2 too: its masks follow the restored step, so a resumed run draws the masks of the straight one.
    [Theory]
    [InlineData(0f)]
    [InlineData(0.2f)]
    public void ResumingFromACheckpointReproducesTrainingBitForBit(float dropout)
    {
        var pc = new PriorConfig { Layers = 2, Heads = 2, Width = 16, Dropout = dropout };
        var codes = RandomCodes(40, 1);
        var tc = new TrainConfig { Steps = 12, Batch = 6, Lr = 3e-3f, MinLr = 1e-4f, WarmupSteps = 3, WeightDecay = 0.01f, LogEvery = 1, Seed = 2 };
        var ae = new AutoencoderRef("mvq", "c", "w");
        using var dir = new TempDir();
        float[][] Run(int stopAt, string? resume)
        {
            using var prior = new TransformerPrior(Cpu, pc, Mvq, seed: 7);
            using var tr = new PriorTrainer(Cpu, prior, tc, codes);
            if (resume != null) PriorCheckpoint.RestoreTraining(resume, tr, ae);
            while (tr.Step < stopAt) tr.TrainStep();
            if (stopAt < tc.Steps) PriorCheckpoint.Save(dir.File("mid.safetensors"), prior, ae, tr);
            return prior.Parameters().Select(p => p.Value.ToArray()).ToArray();
        }
        var straight = Run(tc.Steps, null);
        Run(5, null);
        var resumed = Run(tc.Steps, dir.File("mid.safetensors"));
        for (int i = 0; i < straight.Length; i++) Assert.Equal(straight[i], resumed[i]);
        // The checkpoint is refused by another autoencoder.
        using var other = new TransformerPrior(Cpu, pc, Mvq, seed: 7);
        using var tr2 = new PriorTrainer(Cpu, other, tc, codes);
        var e = Assert.Throws<MvqInputException>(() => PriorCheckpoint.RestoreTraining(dir.File("mid.safetensors"), tr2, ae with { WeightsHash = "x" }));
        Assert.Contains("another autoencoder", e.Message);
    }

    [Fact]
    public void TrainingBeatsTheUnigramBaselinesOnHeldOutCodes()
    {
        var train = RandomCodes(400, 1);
        var test = RandomCodes(100, 2);
        var tc = new TrainConfig { Steps = 150, Batch = 32, Lr = 3e-3f, MinLr = 1e-4f, WarmupSteps = 10, LogEvery = 50, Seed = 1 };
        using var prior = new TransformerPrior(Cpu, Small, Mvq, seed: 1);
        using (var tr = new PriorTrainer(Cpu, prior, tc, train)) while (tr.Step < tc.Steps) tr.TrainStep();
        var ev = PriorEvaluator.Run(prior, test, train);
        Assert.Equal(100, ev.Images);
        Assert.Equal(ev.NatsPerToken * Mvq.Length / Math.Log(2), ev.BitsPerImage, 6);
        Assert.Equal(ev.BitsPerImage, ev.BitsPerImageBySegment.Values.Sum(), 6);
        // Tokens copy their predecessor 80% of the time: independent tokens cannot see that, the prior must.
        Assert.True(ev.BitsPerImage < 0.8 * ev.UnigramPositionBitsPerImage, $"prior {ev.BitsPerImage:F2} bits/image, unigram {ev.UnigramPositionBitsPerImage:F2}");
    }
}
