// Hand-computed cases, accumulation and thread-count independence of group_norm_forward/backward and the
// GroupNorm layer (the central-difference check is registry-driven: GradientCheckTests).
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;

namespace MvqNative.Tests.Gradients;

[Collection("CpuParallel.Threads")]
public class GroupNormGradTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    private static float[] Rand(Random r, int n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)r.NextDouble();
        return a;
    }

    private static int Count(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    [Fact]
    public void ForwardEqualsHandComputation()
    {
        // x [1, 4, 3] with values 1..12, two groups: {1..6} and {7..12}, each mean m, biased variance 35/12.
        var x = Enumerable.Range(1, 12).Select(v => (float)v).ToArray();
        using var layer = new GroupNorm(Cpu, groups: 2, channels: 4);
        using var tx = Cpu.FromArray(x, 1, 4, 3);
        var y = layer.Forward(tx).ToArray();
        double var = 35.0 / 12, denom = Math.Sqrt(var + 1e-5);
        for (int i = 0; i < 12; i++)
        {
            double m = i < 6 ? 3.5 : 9.5;
            Assert.Equal((x[i] - m) / denom, y[i], 5e-6);
        }
        for (int g = 0; g < 2; g++)
        {
            var part = y.Skip(g * 6).Take(6).Select(v => (double)v).ToArray();
            double mu = part.Average(), v2 = part.Select(v => (v - mu) * (v - mu)).Average();
            Assert.Equal(0, mu, 1e-6);
            Assert.Equal(var / (var + 1e-5), v2, 1e-5);
        }
    }

    [Fact]
    public void ParameterGradientsAccumulate()
    {
        var rng = new Random(5);
        int[] shape = [2, 6, 3, 3];
        var a = new GroupNormAttrs(3);
        using var tx = Cpu.FromArray(Rand(rng, 108), shape); using var tg = Cpu.FromArray(Rand(rng, 6), 6); using var tb = Cpu.FromArray(Rand(rng, 6), 6);
        using var ty = Cpu.Empty(shape); using var tm = Cpu.Empty(6); using var tr = Cpu.Empty(6);
        GroupNormOps.Forward.Run(Cpu, [tx, tg, tb], [ty, tm, tr], a);
        using var tdy = Cpu.FromArray(Rand(rng, 108), shape); using var tdx = Cpu.Empty(shape);

        using var dg0 = Cpu.Zeros(6); using var db0 = Cpu.Zeros(6);
        GroupNormOps.BackwardOp.Run(Cpu, [tx, tg, tm, tr, tdy], [tdx, dg0, db0], a);
        var init = Rand(rng, 6, 1f, 2f);
        using var dg1 = Cpu.FromArray(init, 6); using var db1 = Cpu.FromArray(init, 6);
        GroupNormOps.BackwardOp.Run(Cpu, [tx, tg, tm, tr, tdy], [tdx, dg1, db1], a);
        float[] g0 = dg0.ToArray(), b0 = db0.ToArray(), g1 = dg1.ToArray(), b1 = db1.ToArray();
        Assert.Contains(g0, v => v != 0);
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(init[i] + g0[i], g1[i], 1e-6f);
            Assert.Equal(init[i] + b0[i], b1[i], 1e-6f);
        }

        // Through the layer: two backward passes give twice the gradient of one.
        using var layer = new GroupNorm(Cpu, 3, 6);
        layer.Forward(tx);
        layer.Backward(tdy);
        var once = layer.Weight.Grad.ToArray();
        layer.Backward(tdy);
        var twice = layer.Weight.Grad.ToArray();
        for (int i = 0; i < 6; i++) Assert.Equal(2 * once[i], twice[i]);
    }

    [Fact]
    public void BackwardIsBitIdenticalForAnyThreadCount()
    {
        var rng = new Random(9);
        int[] shape = [16, 32, 9, 9];
        int n = Count(shape);
        var a = new GroupNormAttrs(8);
        using var tx = Cpu.FromArray(Rand(rng, n), shape); using var tg = Cpu.FromArray(Rand(rng, 32), 32); using var tb = Cpu.FromArray(Rand(rng, 32), 32);
        using var tdy = Cpu.FromArray(Rand(rng, n), shape);
        int saved = CpuParallel.Threads;
        (float[], float[], float[], float[]) Run(int threads)
        {
            CpuParallel.Threads = threads;
            using var ty = Cpu.Empty(shape); using var tm = Cpu.Empty(128); using var tr = Cpu.Empty(128);
            using var tdx = Cpu.Empty(shape); using var dg = Cpu.Zeros(32); using var db = Cpu.Zeros(32);
            GroupNormOps.Forward.Run(Cpu, [tx, tg, tb], [ty, tm, tr], a);
            GroupNormOps.BackwardOp.Run(Cpu, [tx, tg, tm, tr, tdy], [tdx, dg, db], a);
            return (ty.ToArray(), tdx.ToArray(), dg.ToArray(), db.ToArray());
        }
        try
        {
            var one = Run(1);
            var many = Run(7);
            Assert.Equal(one.Item1, many.Item1);
            Assert.Equal(one.Item2, many.Item2);
            Assert.Equal(one.Item3, many.Item3);
            Assert.Equal(one.Item4, many.Item4);
        }
        finally { CpuParallel.Threads = saved; }
    }

    [Fact]
    public void LayerHasUndecayedWeightAndBias()
    {
        using var layer = new GroupNorm(Cpu, 2, 4);
        var ps = layer.Parameters().ToList();
        Assert.Equal(["weight", "bias"], ps.Select(p => p.Name));
        Assert.All(ps, p => Assert.False(p.Decay));
        Assert.Equal([1f, 1f, 1f, 1f], layer.Weight.Value.ToArray());
        Assert.Equal([0f, 0f, 0f, 0f], layer.Bias.Value.ToArray());
        Assert.Throws<ArgumentException>(() => new GroupNorm(Cpu, 3, 4));
        using var bad = Cpu.Zeros(2, 5, 3);
        Assert.Throws<ArgumentException>(() => layer.Forward(bad));
    }
}
