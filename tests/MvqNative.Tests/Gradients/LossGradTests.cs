// Hand-computed values and thread-count independence of mse_loss, l1_loss, sum_squared_error and
// ReconstructionLoss (the central-difference check is registry-driven: GradientCheckTests).
using MvqNative.Backends.Cpu;
using MvqNative.Layers;
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Gradients;

[Collection("CpuParallel.Threads")]
public class LossGradTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    private static float[] Rand(Random r, int n, float lo = -1f, float hi = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)r.NextDouble();
        return a;
    }

    [Theory]
    [InlineData(LossKind.Mse, 14.0 / 3)]
    [InlineData(LossKind.L1, 2.0)]
    public void ReconstructionLossEqualsHandValue(object kindArg, double want)
    {
        var kind = (LossKind)kindArg;   // object: the enum is internal to the library
        using var loss = new ReconstructionLoss(Cpu, kind);
        using var pred = Cpu.FromArray([1f, -2f, 3f], 1, 3);
        using var target = Cpu.Zeros(1, 3);
        var t = loss.Compute(pred, target);
        Assert.Equal([1], t.Shape);
        Assert.Same(Cpu, t.Backend);
        Assert.Equal(want, loss.Read(), 1e-6);
        Assert.Equal([1, 3], loss.Grad.Shape);
        float[] wantGrad = kind == LossKind.Mse ? [2f / 3, -4f / 3, 2f] : [1f / 3, -1f / 3, 1f / 3];
        var g = loss.Grad.ToArray();
        for (int i = 0; i < 3; i++) Assert.Equal(wantGrad[i], g[i], 1e-6f);
    }

    [Fact]
    public void L1SignOfZeroIsZero()
    {
        using var loss = new ReconstructionLoss(Cpu, LossKind.L1);
        using var pred = Cpu.FromArray([0.5f, 2f, -1f], 3);
        using var target = Cpu.FromArray([0.5f, 1f, -1f], 3);
        loss.Compute(pred, target);
        Assert.Equal([0f, 1f / 3, 0f], loss.Grad.ToArray());
        Assert.Equal(1f / 3, loss.Read(), 1e-7f);
    }

    [Fact]
    public void SumSquaredErrorEqualsHandValue()
    {
        using var a = Cpu.FromArray([1f, 2f, 3f, 0.5f], 2, 2);
        using var b = Cpu.FromArray([1f, 0f, -1f, 0f], 2, 2);
        using var s = Cpu.Empty(1);
        LossOps.SumSquaredError.Run(Cpu, [a, b], [s]);
        Assert.Equal(20.25f, s.ToArray()[0]);
    }

    [Fact]
    public void LossIsBitIdenticalForAnyThreadCount()
    {
        var rng = new Random(3);
        const int n = 200_003;
        using var p = Cpu.FromArray(Rand(rng, n), n); using var t = Cpu.FromArray(Rand(rng, n), n);
        int saved = CpuParallel.Threads;
        float[] Run(int threads)
        {
            CpuParallel.Threads = threads;
            var res = new List<float>();
            foreach (var op in new[] { LossOps.Mse, LossOps.L1 })
            {
                using var loss = Cpu.Empty(1); using var grad = Cpu.Empty(n);
                op.Run(Cpu, [p, t], [loss, grad], new LossAttrs());
                res.Add(loss.ToArray()[0]);
            }
            using var s = Cpu.Empty(1);
            LossOps.SumSquaredError.Run(Cpu, [p, t], [s]);
            res.Add(s.ToArray()[0]);
            return [.. res];
        }
        try
        {
            Assert.Equal(Run(1), Run(5));
        }
        finally { CpuParallel.Threads = saved; }
    }
}
