// The MVQ bottleneck: winner routing (losers get no gradient, no WTA gradient into z1, hand-computed
// winner gradient), finite differences through f, U and GroupNorm with the winner fixed, chunking
// invariance, J = 1 and J = 2048, encode/decode equality and checkpoint round trips.
using MvqNative.Backends.Cpu;
using MvqNative.Checkpoints;
using MvqNative.Layers;
using MvqNative.Models;
using MvqNative.Quantizers;
using MvqNative.Mvq;
using MvqNative.Tensors;
using Xunit;

namespace MvqNative.Tests.Mvq;

[Collection("CpuParallel.Threads")]
public class MvqBottleneckTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;
    private const int B = 3;

    internal static ModelConfig Tiny(string head = "global", int j = 8, int chunk = 3, float beta = 0.25f, string mode = "ema") => new()
    {
        Kind = ModelKind.Mvq,
        Image = new ImageShape { Channels = 1, Height = 8, Width = 8 },
        Encoder = new EncoderConfig { Channels = [4, 8], ResBlocks = 1, ResHidden = 4 },
        Head = head == "grid" ? HeadKind.Grid : HeadKind.Global, Tokens = 2, CodeDim = 4, Codes = 8,
        Quantizer = new QuantizerConfig { Mode = mode == "ema" ? VqMode.Ema : VqMode.Gradient, Beta = beta, KMeansInit = false, RestartEvery = 0 },
        Secondary = new SecondaryConfig { Tokens = 1, CodeDim = 5, Codes = 8 },
        Mvq = new MvqConfig { Hypotheses = j, EvalHypotheses = 16, FHidden = 6, Chunk = chunk, DropRate = 0.5f, BankSeed = 3 },
    };

    private static MvqBottleneck Build(ModelConfig c, int seed = 1) => new(Cpu, c, new Random(seed));

    private static Tensor RandomTensor(int seed, params int[] shape)
    {
        var r = new Random(seed);
        int n = shape.Aggregate(1, (a, b) => a * b);
        return Cpu.FromArray(Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray(), shape);
    }

    private static Tensor H(int seed = 7) => RandomTensor(seed, B, 8, 2, 2);

    private static uint[] Words(int j, int d2, int seed)
    {
        var w = new uint[B * j];
        MaskHash.TrainWords(w, seed, 0, d2, 0.5f);
        return w;
    }

    private static void ZeroGrads(Module m) { foreach (var p in m.Parameters()) p.Grad.Zero(); }

    /// <summary>Every gradient and dh after Forward(h) and Backward(dy).</summary>
    private static Dictionary<string, float[]> Gradients(MvqBottleneck m, Tensor h, Tensor dy)
    {
        ZeroGrads(m);
        m.Forward(h);
        var dh = m.Backward(dy).ToArray();
        var g = m.Parameters().ToDictionary(p => p.Name, p => p.Grad.ToArray());
        g["dh"] = dh;
        return g;
    }

    [Theory]
    [InlineData("global")]
    [InlineData("grid")]
    public void ChangingALosersMaskLeavesEveryGradientBitIdentical(string head)
    {
        var c = Tiny(head);
        using var m = Build(c);
        m.SetTraining(false); // running statistics: the batch statistics would see every hypothesis
        using var h = H();
        var outShape = m.Forward(h).Shape;
        using var dy = RandomTensor(11, outShape);
        var words = Words(8, 5, 4);
        m.OverrideMasks(words);
        var before = Gradients(m, h, dy);
        var win = m.Winners.ToIntArray();
        var dist = m.Distances.ToArray();
        int changed = 0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < 8; j++)
            {
                if (j == win[b]) continue;
                var w2 = (uint[])words.Clone();
                w2[b * 8 + j] ^= 0b10101u;
                m.OverrideMasks(w2);
                var after = Gradients(m, h, dy);
                if (!m.Winners.ToIntArray().SequenceEqual(win)) continue; // the new mask won: not a loser any more
                changed++;
                foreach (var (k, v) in before) Assert.True(v.SequenceEqual(after[k]), $"gradient {k} changed when loser ({b}, {j}) changed its mask");
            }
        Assert.True(changed >= B, $"only {changed} loser changes kept the winners");
        Assert.True(dist.All(float.IsFinite));
    }

    /// <summary>
    /// Training mode (batch statistics over all B*J*L2 rows): a fresh model (gradient codebooks, so a forward
    /// changes no state that the next one reads) gives every gradient bit for bit as an evaluation-mode twin
    /// whose running statistics are set to that forward's batch statistics. So in training a hypothesis
    /// reaches the gradients only through the statistics, which the backward treats as constants, and a
    /// loser's mask changes the gradients exactly as far as it changes the statistics.
    /// </summary>
    [Theory]
    [InlineData("global")]
    [InlineData("grid")]
    public void InTrainingLosersReachTheGradientsOnlyThroughTheConstantBatchStatistics(string head)
    {
        var c = Tiny(head, mode: "gradient");
        using var h = H();
        int[] outShape;
        using (var probe = Build(c)) { probe.SetTraining(false); outShape = probe.Forward(h).Shape; }
        using var dy = RandomTensor(11, outShape);
        (Dictionary<string, float[]> Grads, float[] Mean, float[] Var, int[] Win, float[] Dist) Train(uint[] words)
        {
            using var m = Build(c);
            m.SetTraining(true);
            m.OverrideMasks(words);
            var g = Gradients(m, h, dy);
            return (g, m.Statistics.Mean.ToArray(), m.BatchVariance.ToArray(), m.Winners.ToIntArray(), m.Distances.ToArray());
        }
        Dictionary<string, float[]> Eval(uint[] words, float[] mean, float[] var_)
        {
            using var m = Build(c);
            m.BatchNorm.RunningMean.Value.CopyFrom(mean);
            m.BatchNorm.RunningVar.Value.CopyFrom(var_);
            m.SetTraining(false);
            m.OverrideMasks(words);
            return Gradients(m, h, dy);
        }
        void AssertSame(Dictionary<string, float[]> want, Dictionary<string, float[]> got, string what)
        {
            Assert.Equal(want.Keys.Order(), got.Keys.Order());
            foreach (var (k, v) in want) Assert.True(v.SequenceEqual(got[k]), $"{what}: gradient {k} differs");
        }
        var words = Words(8, 5, 4);
        var t = Train(words);
        AssertSame(t.Grads, Eval(words, t.Mean, t.Var), "training vs evaluation with the batch statistics");
        int changed = 0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < 8; j += 3)
            {
                if (j == t.Win[b]) continue;
                var w2 = (uint[])words.Clone();
                w2[b * 8 + j] ^= 0b10101u;
                var t2 = Train(w2);
                if (!t2.Win.SequenceEqual(t.Win)) continue; // the new mask won: not a loser any more
                changed++;
                Assert.False(t2.Mean.SequenceEqual(t.Mean), "a loser's mask must move the batch statistics (it is one of the B*J rows)");
                AssertSame(t2.Grads, Eval(w2, t2.Mean, t2.Var), $"loser ({b}, {j}) changed");
            }
        Assert.True(changed >= B, $"only {changed} loser changes kept the winners");
        Assert.True(t.Dist.All(float.IsFinite));
    }

    /// <summary>
    /// Finite differences in training mode with J = 8 (batch statistics over every hypothesis) for the
    /// parameters after the statistics (f.1, f.3, U): the statistics do not depend on them, so the full
    /// numeric derivative is the analytic one. The parameters before the statistics (f.0, GroupNorm) get the
    /// stop-gradient derivative by design; that it equals the evaluation-mode derivative with the same
    /// statistics is the test above, and FiniteDifferencesThroughFUAndGroupNorm checks that one numerically.
    /// </summary>
    [Theory]
    [InlineData("global")]
    [InlineData("grid")]
    public void FiniteDifferencesInTrainingModeAfterTheStatistics(string head)
    {
        var c = Tiny(head, beta: 0f, mode: "gradient");
        using var m = Build(c, seed: 5);
        m.SetTraining(true); // gradient codebooks: a training forward is a pure function of the parameters
        using var h = H(3);
        m.OverrideMasks(Words(8, 5, 8));
        var outShape = m.Forward(h).Shape;
        var win = m.Winners.ToIntArray();
        using var dy = RandomTensor(12, outShape);
        var wdy = dy.ToArray();
        double Loss()
        {
            var o = m.Forward(h).ToArray();
            Assert.Equal(win, m.Winners.ToIntArray()); // the perturbation must not change a winner
            double s = m.WtaLoss.ToArray()[0];
            for (int i = 0; i < o.Length; i++) s += (double)o[i] * wdy[i];
            return s;
        }
        ZeroGrads(m);
        m.Forward(h);
        m.Backward(dy);
        var names = new List<string> { "f.1.weight", "f.1.bias", "f.3.weight", "f.3.bias" };
        if (head == "global") names.AddRange(["mix.weight", "mix.bias"]);
        var ps = m.Parameters().ToDictionary(p => p.Name);
        const float eps = 1e-3f;
        int checkedCount = 0;
        foreach (var name in names)
        {
            var p = ps[name];
            var v = p.Value.ToArray(); var grad = p.Grad.ToArray();
            for (int i = 0; i < v.Length; i += Math.Max(1, v.Length / 5))
            {
                var w = (float[])v.Clone();
                w[i] = v[i] + eps; p.Value.CopyFrom(w); double lp = Loss();
                w[i] = v[i] - eps; p.Value.CopyFrom(w); double lm = Loss();
                p.Value.CopyFrom(v);
                double fd = (lp - lm) / (2 * eps);
                // float32 forward: O(1) losses carry ~1e-6 / eps of noise; a smaller eps than the evaluation-mode test keeps every winner in place.
                Assert.True(Math.Abs(fd - grad[i]) <= 5e-3 + 2e-2 * Math.Abs(grad[i]), $"{head} {name}[{i}]: analytic {grad[i]}, numeric {fd}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 15);
    }

    /// <summary>
    /// One formula on the CPU: the winner path (f.0, BatchNorm, LeakyReLU, f.3, U as layers) reproduces the
    /// scored distance of the winner bit for bit, in training (batch statistics) and evaluation (running ones),
    /// so the winner is chosen on the numbers that train. Per instance: d = float(sum over (l1, d1) of e^2 in
    /// double / (L1 D1)), e = (q1 - z1) + U f, summed in mvq_score's order.
    /// </summary>
    [Theory]
    [InlineData("global", true)]
    [InlineData("global", false)]
    [InlineData("grid", true)]
    [InlineData("grid", false)]
    public void TheWinnersDistanceIsItsScoredDistanceExactly(string head, bool training)
    {
        const int j = 21;
        using var m = Build(Tiny(head, j, chunk: 8));
        using var h = H();
        m.Forward(h); // a training step moves the running statistics away from (0, 1)
        m.SetTraining(training);
        m.Forward(h);
        var e = m.EW!.ToArray(); var dist = m.Distances.ToArray(); var win = m.Winners.ToIntArray();
        var (l1, d1, _, _, _) = m.Sizes;
        int n = l1 * d1, jn = dist.Length / B; // J in training, J_eval (the bank) in evaluation
        Assert.Equal(training ? j : 16, jn);
        for (int b = 0; b < B; b++)
        {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += (double)e[b * n + i] * e[b * n + i];
            float d = (float)(acc / n);
            Assert.True(BitConverter.SingleToInt32Bits(dist[b * jn + win[b]]) == BitConverter.SingleToInt32Bits(d),
                $"{head} training={training} instance {b}: scored {dist[b * jn + win[b]]:R}, winner path {d:R}");
        }
    }

    [Fact]
    public void WtaSendsNothingIntoZ1AndTheWinnerGradientIsTheHandFormula()
    {
        // beta = 0 and dy = 0: the only loss with a gradient is d_w.
        var c = Tiny("global", beta: 0f);
        using var m = Build(c);
        m.SetTraining(false);
        using var h = H();
        m.OverrideMasks(Words(8, 5, 2));
        var y = m.Forward(h);
        using var dy = Cpu.Zeros(y.Shape);
        ZeroGrads(m);
        m.Backward(dy);
        var headGrad = m.Head.Parameters().SelectMany(p => p.Grad.ToArray()).ToArray();
        Assert.All(headGrad, v => Assert.Equal(0f, v));
        var fGrad = m.F0.Weight.Grad.ToArray();
        Assert.Contains(fGrad, v => v != 0f);
        Assert.Contains(m.Head2.Parameters().SelectMany(p => p.Grad.ToArray()), v => v != 0f);

        // mix.bias[l1, d] gets sum_b 2 (Y_w - z1)[b, l1, d] / (B L1 D1), by hand.
        var yw = m.YW!.ToArray(); var z1 = m.Z1!.ToArray();
        int l1 = 2, d1 = 4, n = B * l1 * d1;
        var want = new double[l1 * d1];
        double dw = 0;
        for (int i = 0; i < yw.Length; i++) { double e = (double)yw[i] - z1[i]; want[i % (l1 * d1)] += 2 * e / n; dw += e * e / n; }
        var got = m.Mix!.Bias.Grad.ToArray();
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 1e-6);
        Assert.Equal(dw, m.WtaLoss.ToArray()[0], 1e-6);
        // d_w is the mean over instances of the fused score of each winner.
        var dist = m.Distances.ToArray(); var win = m.Winners.ToIntArray();
        double fromScores = Enumerable.Range(0, B).Average(b => (double)dist[b * 8 + win[b]]);
        Assert.Equal(fromScores, dw, 1e-5);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < 8; j++) Assert.True(dist[b * 8 + win[b]] <= dist[b * 8 + j]);
    }

    [Theory]
    [InlineData("global")]
    [InlineData("grid")]
    public void FiniteDifferencesThroughFUAndGroupNorm(string head)
    {
        var c = Tiny(head, beta: 0f);
        using var m = Build(c, seed: 5);
        m.SetTraining(false); // running statistics: constants, as the batch statistics are in training
        using var h = H(3);
        m.OverrideMasks(Words(1, 5, 8)); // J = 1: the winner is fixed
        var outShape = m.Forward(h).Shape;
        using var dy = RandomTensor(12, outShape);
        var wdy = dy.ToArray();
        double Loss()
        {
            var o = m.Forward(h).ToArray();
            double s = m.WtaLoss.ToArray()[0];
            for (int i = 0; i < o.Length; i++) s += (double)o[i] * wdy[i];
            return s;
        }
        ZeroGrads(m);
        m.Forward(h);
        m.Backward(dy);
        var names = new List<string> { "f.0.weight", "f.0.bias", "f.1.weight", "f.1.bias", "f.3.weight", "f.3.bias", "gn.weight", "gn.bias" };
        if (head == "global") names.AddRange(["mix.weight", "mix.bias"]);
        var ps = m.Parameters().ToDictionary(p => p.Name);
        const float eps = 1e-2f;
        int checkedCount = 0;
        foreach (var name in names)
        {
            var p = ps[name];
            var v = p.Value.ToArray(); var grad = p.Grad.ToArray();
            for (int i = 0; i < v.Length; i += Math.Max(1, v.Length / 5))
            {
                var w = (float[])v.Clone();
                w[i] = v[i] + eps; p.Value.CopyFrom(w); double lp = Loss();
                w[i] = v[i] - eps; p.Value.CopyFrom(w); double lm = Loss();
                p.Value.CopyFrom(v);
                double fd = (lp - lm) / (2 * eps);
                // float32 forward: differences of O(1) losses carry ~1e-6 / eps of noise; kinks of LeakyReLU are rare at this eps.
                Assert.True(Math.Abs(fd - grad[i]) <= 2e-3 + 2e-2 * Math.Abs(grad[i]), $"{head} {name}[{i}]: analytic {grad[i]}, numeric {fd}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 20);
    }

    [Theory]
    [InlineData("global")]
    [InlineData("grid")]
    public void AnyChunkSizeGivesTheSameWinnersAndDistances(string head)
    {
        const int j = 21;
        int[]? win = null; float[]? dist = null, rm = null;
        foreach (int chunk in new[] { 1, 3, 7, j, 100 })
        {
            using var m = Build(Tiny(head, j, chunk)); // fresh model: training mode updates state
            using var h = H();
            m.Forward(h);
            var w = m.Winners.ToIntArray(); var d = m.Distances.ToArray(); var r = m.BatchNorm.RunningMean.Value.ToArray();
            if (win is null) { win = w; dist = d; rm = r; continue; }
            Assert.Equal(win, w);
            Assert.Equal(dist, d);
            Assert.Equal(rm, r);
        }
    }

    [Fact]
    public void OneHypothesisTrainsAndTheWinnerIsZero()
    {
        using var m = Build(Tiny("global", j: 1, chunk: 1));
        using var h = H();
        var y = m.Forward(h);
        Assert.All(m.Winners.ToIntArray(), w => Assert.Equal(0, w));
        using var dy = RandomTensor(2, y.Shape);
        var dh = m.Backward(dy).ToArray();
        Assert.All(dh, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(1UL, m.MaskStep);
    }

    [Fact]
    public void TwoThousandHypothesesRunAndPickTheArgmin()
    {
        const int j = 2048;
        using var m = Build(Tiny("grid", j, chunk: 256));
        using var h = H();
        var y = m.Forward(h);
        var dist = m.Distances.ToArray(); var win = m.Winners.ToIntArray();
        for (int b = 0; b < B; b++)
        {
            int best = 0;
            for (int k = 1; k < j; k++) if (dist[b * j + k] < dist[b * j + best]) best = k;
            Assert.Equal(best, win[b]);
        }
        using var dy = RandomTensor(2, y.Shape);
        Assert.All(m.Backward(dy).ToArray(), v => Assert.True(float.IsFinite(v)));
        var words = m.LastWords;
        Assert.Equal(B * j, words.Length);
        Assert.All(words, w => Assert.Equal(0u, w >> 5));
        // Fresh masks each step, reproducible from (seed, step).
        var expected = new uint[B * j];
        MaskHash.TrainWords(expected, m.MaskSeed, 0, 5, 0.5f);
        Assert.Equal(expected, words);
        m.Forward(h);
        Assert.NotEqual(words, m.LastWords);
    }

    [Theory]
    [InlineData("global")]
    [InlineData("grid")]
    public void DecodeOfEncodeEqualsTheOracleReconstructionExactly(string head)
    {
        using var model = new Autoencoder(Cpu, Tiny(head), seed: 4);
        using var x = RandomTensor(9, B, 1, 8, 8);
        model.SetTraining(true);
        model.Forward(x); // one training step moves the running statistics away from (0, 1)
        model.SetTraining(false);
        var oracle = model.Forward(x).ToArray();
        var bn = (MvqBottleneck)model.Bottleneck;
        var codes = new int[B * bn.CodeLength];
        bn.ReadCodes(codes);
        Assert.Equal(head == "grid" ? 4 + 4 + 1 : 2 + 1 + 1, bn.CodeLength);
        Assert.All(Enumerable.Range(0, B), i => Assert.InRange(codes[i * bn.CodeLength + bn.CodeLength - 1], 0, 15));
        using var tc = Cpu.FromArray(codes, B, bn.CodeLength);
        var decoded = model.Decode(tc).ToArray();
        Assert.Equal(oracle, decoded);
    }

    [Fact]
    public void CheckpointRoundTripKeepsTheEvaluationBankAndMaskStep()
    {
        var c = Tiny("global");
        c.Mvq!.BankSeed = 99;
        using var model = new Autoencoder(Cpu, c, seed: 4);
        using var x = RandomTensor(9, B, 1, 8, 8);
        model.Forward(x);
        model.Forward(x);
        var bn = (MvqBottleneck)model.Bottleneck;
        model.SetTraining(false);
        var y = model.Forward(x).ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"mvq-bank-{Environment.ProcessId}-{Guid.NewGuid():N}.safetensors");
        try
        {
            ModelCheckpoint.Save(path, model);
            using var loaded = ModelCheckpoint.Load(path, Cpu);
            var lb = (MvqBottleneck)loaded.Bottleneck;
            Assert.Equal(99, lb.BankSeed);
            Assert.Equal(bn.EvalBank, lb.EvalBank);
            Assert.Equal(MaskHash.EvalBank(99, 16, 5, 0.5f), lb.EvalBank);
            Assert.Equal(2UL, lb.MaskStep);
            Assert.Equal(bn.MaskSeed, lb.MaskSeed);
            loaded.SetTraining(false);
            Assert.Equal(y, loaded.Forward(x).ToArray());
        }
        finally { File.Delete(path); }
    }
}
