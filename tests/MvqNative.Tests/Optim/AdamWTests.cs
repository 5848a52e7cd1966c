// AdamW against a float64 hand computation of PyTorch's AdamW (with clip_grad_norm_),
// sum_squares, state save/load, and the warmup-cosine schedule.
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Optim;
using Xunit;

namespace MvqNative.Tests.Optim;

public class AdamWTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    [Fact]
    public void ThreeStepsMatchAFloat64PyTorchAdamWWithDecayAndClipping()
    {
        const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, clip = 1.0;
        float[] w0 = [0.5f, -1f, 2f, 0.25f, -0.75f, 1.5f];
        float[] bias0 = [0.1f, -0.2f];
        // Step 1 and 3 have a global norm above the clip, step 2 below it.
        float[][] gw = [[1f, -2f, 0.5f, 0f, 3f, -1f], [0.1f, 0.05f, -0.2f, 0.1f, 0f, 0.3f], [-2f, 1f, 1f, -0.5f, 0.5f, 2f]];
        float[][] gb = [[0.5f, -0.5f], [-0.1f, 0.2f], [1f, 1f]];
        using var w = new Parameter("w", Cpu.FromArray(w0, 2, 3));
        using var bias = new Parameter("b", Cpu.FromArray(bias0, 2), decay: false);
        using var frozen = new Parameter("frozen", Cpu.FromArray([3f], 1), trainable: false);
        using var opt = new AdamW([w, bias, frozen], lr: (float)lr, beta1: (float)b1, beta2: (float)b2, eps: (float)eps, weightDecay: (float)wd, clipNorm: (float)clip);

        double[][] p = [w0.Select(v => (double)v).ToArray(), bias0.Select(v => (double)v).ToArray()];
        double[][] m = [new double[6], new double[2]], v = [new double[6], new double[2]];
        bool[] decay = [true, false];
        for (int t = 1; t <= 3; t++)
        {
            opt.ZeroGrad();
            w.Grad.CopyFrom(gw[t - 1]); bias.Grad.CopyFrom(gb[t - 1]);
            frozen.Grad.CopyFrom([100f]);
            opt.Step();

            double[][] g = [gw[t - 1].Select(x => (double)x).ToArray(), gb[t - 1].Select(x => (double)x).ToArray()];
            double norm = Math.Sqrt(g.Sum(a => a.Sum(x => x * x))); // frozen grads do not count
            double c = Math.Min(1.0, clip / (norm + 1e-6));
            Assert.Equal(norm, opt.LastGradNorm, 1e-5);
            if (t != 2) Assert.True(c < 1, "steps 1 and 3 must clip");
            for (int k = 0; k < 2; k++)
                for (int i = 0; i < p[k].Length; i++)
                {
                    double gi = g[k][i] * c;
                    if (decay[k]) p[k][i] *= 1 - lr * wd;
                    m[k][i] = b1 * m[k][i] + (1 - b1) * gi;
                    v[k][i] = b2 * v[k][i] + (1 - b2) * gi * gi;
                    double mh = m[k][i] / (1 - Math.Pow(b1, t)), vh = v[k][i] / (1 - Math.Pow(b2, t));
                    p[k][i] -= lr * mh / (Math.Sqrt(vh) + eps);
                }
            var gotW = w.Value.ToArray(); var gotB = bias.Value.ToArray();
            // Float32 parameters near 2 carry a rounding of ~1.2e-7 per step: 1e-6 absolute.
            for (int i = 0; i < 6; i++) Assert.Equal(p[0][i], gotW[i], 1e-6);
            for (int i = 0; i < 2; i++) Assert.Equal(p[1][i], gotB[i], 1e-6);
        }
        Assert.Equal(3, opt.StepCount);
        Assert.Equal([3f], frozen.Value.ToArray());
        Assert.Equal(2, opt.State.Count());
        var (name, mw, vw) = opt.State.First();
        Assert.Equal("w", name);
        for (int i = 0; i < 6; i++) { Assert.Equal(m[0][i], mw.ToArray()[i], 1e-6); Assert.Equal(v[0][i], vw.ToArray()[i], 1e-7); }
    }

    [Fact]
    public void LoadedStateContinuesBitIdentically()
    {
        float[] w0 = [0.3f, -0.6f, 0.9f];
        using var a = new Parameter("w", Cpu.FromArray(w0, 3));
        using var b = new Parameter("w", Cpu.FromArray(w0, 3));
        using var optA = new AdamW([a], lr: 1e-2f, weightDecay: 0.01f);
        using var optB = new AdamW([b], lr: 1e-2f, weightDecay: 0.01f);
        float[][] grads = [[1f, 2f, -1f], [0.5f, -0.1f, 0.2f], [-0.3f, 0.3f, 3f]];
        for (int t = 0; t < 2; t++) { optA.ZeroGrad(); a.Grad.CopyFrom(grads[t]); optA.Step(); }
        b.Value.CopyFrom(a.Value);
        optB.LoadState(optA.StepCount, optA.State);
        optA.ZeroGrad(); a.Grad.CopyFrom(grads[2]); optA.Step();
        optB.ZeroGrad(); b.Grad.CopyFrom(grads[2]); optB.Step();
        Assert.Equal(a.Value.ToArray(), b.Value.ToArray());
        using var other = new Parameter("other", Cpu.FromArray([1f], 1));
        using var optC = new AdamW([other]);
        Assert.Throws<KeyNotFoundException>(() => optC.LoadState(1, optA.State));
    }

    [Fact]
    public void MultiTensorAndPerParameterPathsAreBitIdenticalOnTheCpu()
    {
        // adamw_multi's CPU twin sums and updates in the order of sum_squares + adamw_step per
        // parameter, so the fixed-seed training trajectories stay bit-identical.
        float[][] Run(bool multi)
        {
            var rng = new Random(3);
            var ps = new[] { ("w", 20000, true), ("b", 7, false), ("s", 1, true) }
                .Select(x => new Parameter(x.Item1, Cpu.FromArray(Enumerable.Range(0, x.Item2).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), x.Item2), x.Item3)).ToList();
            using var opt = new AdamW(ps, lr: 1e-2f, weightDecay: 0.1f, clipNorm: 1f) { MultiTensor = multi };
            for (int t = 0; t < 3; t++)
            {
                foreach (var p in ps) p.Grad.CopyFrom(Enumerable.Range(0, p.Grad.Length).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray());
                opt.Step();
            }
            var r = ps.Select(p => p.Value.ToArray()).Concat(opt.State.SelectMany(x => new[] { x.M.ToArray(), x.V.ToArray() })).Append([opt.LastGradNorm]).ToArray();
            foreach (var p in ps) p.Dispose();
            return r;
        }
        var multi = Run(true); var per = Run(false);
        Assert.Equal(per.Length, multi.Length);
        for (int k = 0; k < per.Length; k++) Assert.Equal(per[k], multi[k]);
    }

    /// <summary>
    /// The gradients live in one buffer (GradientArena): values written before the optimiser existed are kept, each
    /// gradient is a view of its parameter's shape, ZeroGrad zeroes them all with one fill (one memset on CUDA), and the
    /// buffer outlives the optimiser while parameters still use it.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cuda.CudaMvqTests.AllDevices), MemberType = typeof(Cuda.CudaMvqTests))]
    public void GradientsShareOneBufferAndZeroWithOneFill(string device)
    {
        var be = TestDevices.Get(device);
        var ps = new[] { ("w", new[] { 3, 50 }), ("b", new[] { 7 }), ("s", new[] { 64 }) }
            .Select(x => new Parameter(x.Item1, be.Zeros(x.Item2))).ToList();
        var frozen = new Parameter("frozen", be.Zeros(5), trainable: false);
        ps[1].Grad.CopyFrom(new float[] { 1, 2, 3, 4, 5, 6, 7 });
        frozen.Grad.CopyFrom(new float[] { 9, 9, 9, 9, 9 });
        var opt = new AdamW([.. ps, frozen]);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6, 7 }, ps[1].Grad.ToArray());
        Assert.All(ps, p => Assert.Same(ps[0].Grad.Buffer, p.Grad.Buffer));
        Assert.All(ps, p => Assert.Equal(p.Value.Shape, p.Grad.Shape));
        Assert.All(ps, p => Assert.Equal(0, p.Grad.Offset % 64));
        Assert.NotSame(ps[0].Grad.Buffer, frozen.Grad.Buffer);
        foreach (var p in ps) p.Grad.Fill(3f);
        var counters = (be as MvqNative.Backends.Cuda.CudaBackend)?.Counters;
        long before = counters?.Snapshot().Memsets ?? 0;
        opt.ZeroGrad();
        if (counters is not null) Assert.Equal(1, counters.Snapshot().Memsets - before);
        Assert.All(ps, p => Assert.All(p.Grad.ToArray(), g => Assert.Equal(0f, g)));
        Assert.All(frozen.Grad.ToArray(), g => Assert.Equal(9f, g)); // not the optimiser's: untouched
        opt.Dispose();
        ps[2].Grad.Fill(2f); // the parameters still hold the buffer
        Assert.All(ps[2].Grad.ToArray(), g => Assert.Equal(2f, g));
        foreach (var p in ps) p.Dispose();
        frozen.Dispose();
    }

    [Fact]
    public void AdamWMultiChecksItsTensorList()
    {
        using var g0 = Cpu.Zeros(3); using var g1 = Cpu.Zeros(2, 2);
        using var p0 = Cpu.Zeros(3); using var m0 = Cpu.Zeros(3); using var v0 = Cpu.Zeros(3);
        using var p1 = Cpu.Zeros(4); using var m1 = Cpu.Zeros(2, 2); using var v1 = Cpu.Zeros(2, 2);
        using var gns = Cpu.Zeros(1);
        var a = new AdamWMultiAttrs(new AdamWAttrs(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1, 1f), [true, false]);
        var e = Assert.Throws<ArgumentException>(() => OptimizerOps.AdamWMulti.Run(Cpu, [g0, g1], [gns, p0, m0, v0], a));
        Assert.Equal("op adamw_multi: takes 0 + 1 T inputs and 1 + 3 T outputs for T >= 1 tensor groups (adamw_multi(grad[T]) -> gradNormSq =, param[T] <->, m[T] <->, v[T] <->), got 2 and 4", e.Message);
        e = Assert.Throws<ArgumentException>(() => OptimizerOps.AdamWMulti.Run(Cpu, [g0, g1], [gns, p0, m0, v0, p1, m1, v1], a));
        Assert.Equal("op adamw_multi: param[1] [4], m[1] [2,2] and v[1] [2,2] must have the shape of grad[1] [2,2]", e.Message);
        e = Assert.Throws<ArgumentException>(() => OptimizerOps.AdamWMulti.Run(Cpu, [g0], [gns, p0, m0, v0], a));
        Assert.Equal("op adamw_multi: Decay has 2 flags for 1 tensor groups", e.Message);
        using var idx = Cpu.EmptyInt(3);
        e = Assert.Throws<ArgumentException>(() => OptimizerOps.AdamWMulti.Run(Cpu, [g0, g1], [gns, p0, m0, v0, idx, m1, v1], a));
        Assert.Equal("op adamw_multi: output param[1] must be F32, got I32 [3]", e.Message);
    }

    [Fact]
    public void SumSquaresAccumulatesInDouble()
    {
        using var x = Cpu.FromArray([1f, 2f, 3f], 3);
        using var s = Cpu.FromArray([2f], 1);
        ReduceOps.SumSquares.Run(Cpu, [x], [s]);
        Assert.Equal(16f, s.ToArray()[0]);

        // 100003 values of 0.1f: a float running sum drifts; a double one rounds once.
        var big = Enumerable.Repeat(0.1f, 100003).ToArray();
        using var tb = Cpu.FromArray(big, big.Length);
        s.Zero();
        ReduceOps.SumSquares.Run(Cpu, [tb], [s]);
        double want = 100003 * ((double)0.1f * 0.1f);
        Assert.Equal((float)want, s.ToArray()[0]);
    }

    [Fact]
    public void WarmupCosineSchedule()
    {
        Assert.Equal(1e-3f / 10, LrSchedule.WarmupCosine(0, 10, 110, 1e-3f, 1e-5f), 9);
        Assert.Equal(1e-3f, LrSchedule.WarmupCosine(9, 10, 110, 1e-3f, 1e-5f), 9);
        Assert.Equal(1e-3f, LrSchedule.WarmupCosine(10, 10, 110, 1e-3f, 1e-5f), 9);
        Assert.Equal((1e-3 + 1e-5) / 2, LrSchedule.WarmupCosine(60, 10, 110, 1e-3f, 1e-5f), 9);
        Assert.Equal(1e-5f, LrSchedule.WarmupCosine(110, 10, 110, 1e-3f, 1e-5f), 9);
        Assert.Equal(1e-5f, LrSchedule.WarmupCosine(500, 10, 110, 1e-3f, 1e-5f), 9);
        float prev = float.MaxValue;
        for (int s = 10; s <= 110; s++) { float lr = LrSchedule.WarmupCosine(s, 10, 110, 1e-3f, 1e-5f); Assert.True(lr <= prev); prev = lr; }
    }
}
