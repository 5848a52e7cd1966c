// Central-difference gradient checks of the prior's smooth ops (gelu, layer_norm, attention, cross_entropy,
// embedding), thread-count independence of their CPU backward passes, and decode = the last row of full attention.
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;
using static MvqNative.Tests.Gradients.GemmOpsGradCheck;

namespace MvqNative.Tests.Prior;

[Collection("CpuParallel.Threads")]
public class PriorOpsGradTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    /// <summary>Runs an op on the CPU; inputs listed in <paramref name="ints"/> are I32 tensors.</summary>
    private static double[][] RunCpuMixed(OpDef op, double[][] ins, int[][] inShapes, int[] ints, double[][] outInit, int[][] outShapes, object? attrs)
    {
        var tin = new Tensor[ins.Length];
        var tout = new Tensor[outInit.Length];
        try
        {
            for (int i = 0; i < ins.Length; i++)
            {
                if (ints.Contains(i)) { tin[i] = Cpu.EmptyInt(inShapes[i]); tin[i].CopyFrom((ReadOnlySpan<int>)ins[i].Select(v => (int)v).ToArray()); }
                else tin[i] = Cpu.FromArray(ins[i].Select(v => (float)v).ToArray(), inShapes[i]);
            }
            for (int i = 0; i < outInit.Length; i++) tout[i] = Cpu.FromArray(outInit[i].Select(v => (float)v).ToArray(), outShapes[i]);
            op.Run(Cpu, tin, tout, attrs);
            return tout.Select(t => t.ToArray().Select(v => (double)v).ToArray()).ToArray();
        }
        finally
        {
            foreach (var t in tin) t?.Dispose();
            foreach (var t in tout) t?.Dispose();
        }
    }

    /// <summary>dL/d ins[wrt] for L = sum(g * out[0]) of a forward with several outputs, by central differences.</summary>
    private static double[] NumericFirst(OpDef forward, double[][] ins, int[][] inShapes, int[][] outShapes, object? attrs, double[] g, int wrt, double eps)
    {
        double L()
        {
            var y = RunRef(forward, ins, inShapes, outShapes.Select(sh => new double[Count(sh)]).ToArray(), outShapes, attrs)[0];
            double l = 0;
            for (int i = 0; i < y.Length; i++) l += g[i] * y[i];
            return l;
        }
        var p = ins[wrt]; var grad = new double[p.Length];
        for (int i = 0; i < p.Length; i++)
        {
            double keep = p[i];
            p[i] = keep + eps; double up = L();
            p[i] = keep - eps; double down = L();
            p[i] = keep;
            grad[i] = (up - down) / (2 * eps);
        }
        return grad;
    }

    private static double[] Nan(int n) => Enumerable.Repeat(double.NaN, n).ToArray();

    [Fact]
    public void GeluBackwardMatchesCentralDifferences()
    {
        var rng = new Random(3);
        int[] shape = [4, 37];
        var x = Rand(rng, Count(shape)).Select(v => 4 * v).ToArray();
        var g = Rand(rng, x.Length);
        var num = Numeric(GeluOps.Forward, [x], [shape], shape, null, g, 0);
        AssertClose("reference dx", num, RunRef(GeluOps.BackwardOp, [x, g], [shape, shape], [Nan(x.Length)], [shape], null)[0], 1e-7);
        AssertClose("cpu dx", num, RunCpu(GeluOps.BackwardOp, [x, g], [shape, shape], [Nan(x.Length)], [shape], null)[0], 1e-5);
    }

    [Theory]
    [InlineData(5, 13)]
    [InlineData(3, 1)]
    [InlineData(70, 33)]
    public void LayerNormBackwardMatchesCentralDifferences(int n, int c)
    {
        var rng = new Random(n * 31 + c);
        var a = new LayerNormAttrs();
        int[] xs = [n, c], cs = [c], ns = [n];
        var x = Rand(rng, n * c).Select(v => 2 * v).ToArray();
        var gamma = Rand(rng, c).Select(v => 1 + 0.5 * v).ToArray();
        var beta = Rand(rng, c);
        var g = Rand(rng, n * c);
        double[][] ins = [x, gamma, beta];
        int[][] inShapes = [xs, cs, cs];
        // Central differences on the float64 forward (y only).
        double[] Num(int wrt)
        {
            var p = ins[wrt]; var grad = new double[p.Length];
            for (int i = 0; i < p.Length; i++)
            {
                double keep = p[i];
                double L() { var y = RunRef(LayerNormOps.Forward, ins, inShapes, [new double[n * c], new double[n], new double[n]], [xs, ns, ns], a)[0]; return y.Select((v, k) => v * g[k]).Sum(); }
                p[i] = keep + 1e-4; double up = L();
                p[i] = keep - 1e-4; double down = L();
                p[i] = keep;
                grad[i] = (up - down) / 2e-4;
            }
            return grad;
        }
        var fwd = RunRef(LayerNormOps.Forward, ins, inShapes, [new double[n * c], new double[n], new double[n]], [xs, ns, ns], a);
        double[][] bin = [x, gamma, fwd[1], fwd[2], g];
        int[][] bshapes = [xs, cs, ns, ns, xs];
        double[][] init = [Nan(n * c), new double[c], new double[c]];
        var rf = RunRef(LayerNormOps.BackwardOp, bin, bshapes, init, [xs, cs, cs], a);
        // The CPU backward gets float statistics from the CPU forward, as in training.
        var cf = RunCpu(LayerNormOps.Forward, ins, inShapes, [new double[n * c], new double[n], new double[n]], [xs, ns, ns], a);
        var cb = RunCpu(LayerNormOps.BackwardOp, [x, gamma, cf[1], cf[2], g], bshapes, init, [xs, cs, cs], a);
        string[] names = ["dx", "dgamma", "dbeta"];
        for (int k = 0; k < 3; k++)
        {
            var num = Num(k);
            AssertClose($"reference {names[k]}", num, rf[k], 1e-6);
            AssertClose($"cpu {names[k]}", num, cb[k], 1e-5);
        }
    }

    [Theory]
    [InlineData(2, 5, 3, 4)]
    [InlineData(1, 1, 1, 3)]
    [InlineData(2, 9, 2, 7)]
    public void AttentionBackwardMatchesCentralDifferences(int b, int t, int h, int hd)
    {
        var rng = new Random(b * 1000 + t * 10 + h);
        var a = new AttentionAttrs(b, t, h);
        int c = h * hd;
        int[] qs = [b * t, 3 * c], ys = [b * t, c], ls = [b, h, t];
        var qkv = Rand(rng, b * t * 3 * c).Select(v => 1.5 * v).ToArray();
        var g = Rand(rng, b * t * c);
        var num = NumericFirst(AttentionOps.Forward, [qkv], [qs], [ys, ls], a, g, 0, 1e-4);
        var fwd = RunRef(AttentionOps.Forward, [qkv], [qs], [new double[b * t * c], new double[b * h * t]], [ys, ls], a);
        var rf = RunRef(AttentionOps.BackwardOp, [qkv, fwd[0], fwd[1], g], [qs, ys, ls, ys], [Nan(qkv.Length)], [qs], a)[0];
        AssertClose("reference dqkv", num, rf, 1e-6);
        var cf = RunCpu(AttentionOps.Forward, [qkv], [qs], [new double[b * t * c], new double[b * h * t]], [ys, ls], a);
        var cb = RunCpu(AttentionOps.BackwardOp, [qkv, cf[0], cf[1], g], [qs, ys, ls, ys], [Nan(qkv.Length)], [qs], a)[0];
        AssertClose("cpu dqkv", num, cb, 1e-5);
    }

    [Theory]
    [InlineData(6, 11, false)]
    [InlineData(4, 10, true)]
    public void CrossEntropyBackwardMatchesCentralDifferences(int n, int v, bool full)
    {
        var rng = new Random(n + v);
        int[] ls = [n, v], ns = [n], bs = [n, 2];
        var logits = Rand(rng, n * v).Select(x => 3 * x).ToArray();
        var targets = new double[n]; var bounds = new double[2 * n];
        for (int r = 0; r < n; r++)
        {
            int lo = full ? 0 : rng.Next(v - 1), hi = full ? v : lo + 1 + rng.Next(v - lo);
            bounds[2 * r] = lo; bounds[2 * r + 1] = hi;
            targets[r] = lo + rng.Next(hi - lo);
        }
        var g = Rand(rng, n);
        double[][] ins = [logits, targets, bounds];
        int[][] inShapes = [ls, ns, bs];
        var num = NumericFirst(CrossEntropyOps.Forward, ins, inShapes, [ns, ns], null, g, 0, 1e-4);
        var fwd = RunRef(CrossEntropyOps.Forward, ins, inShapes, [new double[n], new double[n]], [ns, ns], null);
        var rf = RunRef(CrossEntropyOps.BackwardOp, [logits, targets, bounds, fwd[1], g], [ls, ns, bs, ns, ns], [Nan(n * v)], [ls], null)[0];
        AssertClose("reference dlogits", num, rf, 1e-7);
        var cf = RunCpuMixed(CrossEntropyOps.Forward, ins, inShapes, [1, 2], [new double[n], new double[n]], [ns, ns], null);
        var cb = RunCpuMixed(CrossEntropyOps.BackwardOp, [logits, targets, bounds, cf[1], g], [ls, ns, bs, ns, ns], [1, 2], [Nan(n * v)], [ls], null)[0];
        AssertClose("cpu dlogits", num, cb, 1e-5);
        // Outside each row's range the gradient is exactly 0.
        for (int r = 0; r < n; r++)
            for (int j = 0; j < v; j++)
                if (j < bounds[2 * r] || j >= bounds[2 * r + 1]) Assert.Equal(0.0, cb[r * v + j]);
    }

    [Fact]
    public void EmbeddingBackwardMatchesCentralDifferences()
    {
        var rng = new Random(11);
        int n = 23, v = 6, c = 5;
        var ids = Enumerable.Range(0, n).Select(_ => (double)rng.Next(v)).ToArray();
        var table = Rand(rng, v * c);
        var g = Rand(rng, n * c);
        var num = Numeric(EmbeddingOps.Forward, [ids, table], [[n], [v, c]], [n, c], null, g, 1);
        var rf = RunRef(EmbeddingOps.BackwardOp, [ids, g], [[n], [n, c]], [new double[v * c]], [[v, c]], null)[0];
        AssertClose("reference dtable", num, rf, 1e-9);
        var cb = RunCpuMixed(EmbeddingOps.BackwardOp, [ids, g], [[n], [n, c]], [0], [new double[v * c]], [[v, c]], null)[0];
        AssertClose("cpu dtable", num, cb, 1e-6);
    }

    [Fact]
    public void BackwardPassesAreBitIdenticalForAnyThreadCount()
    {
        var rng = new Random(21);
        int b = 4, t = 19, h = 2, hd = 16, c = h * hd, n = b * t, v = 40;
        var qkv = Rand(rng, n * 3 * c); var dy = Rand(rng, n * c);
        var x = Rand(rng, n * c); var gamma = Rand(rng, c);
        var ids = Enumerable.Range(0, n).Select(_ => (double)rng.Next(v)).ToArray();
        var a = new AttentionAttrs(b, t, h);
        int saved = CpuParallel.Threads;
        double[][] Run(int threads)
        {
            CpuParallel.Threads = threads;
            var f = RunCpu(AttentionOps.Forward, [qkv], [[n, 3 * c]], [new double[n * c], new double[b * h * t]], [[n, c], [b, h, t]], a);
            var dq = RunCpu(AttentionOps.BackwardOp, [qkv, f[0], f[1], dy], [[n, 3 * c], [n, c], [b, h, t], [n, c]], [new double[n * 3 * c]], [[n, 3 * c]], a)[0];
            var lf = RunCpu(LayerNormOps.Forward, [x, gamma, gamma], [[n, c], [c], [c]], [new double[n * c], new double[n], new double[n]], [[n, c], [n], [n]], new LayerNormAttrs());
            var lb = RunCpu(LayerNormOps.BackwardOp, [x, gamma, lf[1], lf[2], dy], [[n, c], [c], [n], [n], [n, c]], [new double[n * c], new double[c], new double[c]], [[n, c], [c], [c]], new LayerNormAttrs());
            var eb = RunCpuMixed(EmbeddingOps.BackwardOp, [ids, dy], [[n], [n, c]], [0], [new double[v * c]], [[v, c]], null)[0];
            return [f[0], f[1], dq, lb[0], lb[1], lb[2], eb];
        }
        try
        {
            var one = Run(1);
            var many = Run(7);
            for (int i = 0; i < one.Length; i++) Assert.Equal(one[i], many[i]);
        }
        finally { CpuParallel.Threads = saved; }
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda-emu")]
    public void DecodeWithCacheEqualsFullCausalAttention(string device)
    {
        if (device != "cpu" && !TestDevices.Cuda.Contains(device)) return;
        var be = TestDevices.Get(device);
        var rng = new Random(5);
        int b = 3, t = 11, h = 2, hd = 8, c = h * hd, tmax = 16;
        var qkv = Rand(rng, b * t * 3 * c).Select(v => (float)v).ToArray();
        using var tq = be.FromArray(qkv, b * t, 3 * c);
        using var y = be.Empty(b * t, c); using var lse = be.Empty(b, h, t);
        AttentionOps.Forward.Run(be, [tq], [y, lse], new AttentionAttrs(b, t, h));
        var full = y.ToArray();

        // Token by token: append row t of every sequence to the cache, then decode it.
        using var kc = be.Zeros(b, tmax, c); using var vc = be.Zeros(b, tmax, c);
        using var step = be.Empty(b, 3 * c); using var pos = be.EmptyInt(1); using var yd = be.Empty(b, c);
        var da = new AttentionAttrs(b, tmax, h);
        for (int p = 0; p < t; p++)
        {
            var rows = new float[b * 3 * c];
            for (int s = 0; s < b; s++) Array.Copy(qkv, (s * t + p) * 3 * c, rows, s * 3 * c, 3 * c);
            step.CopyFrom((ReadOnlySpan<float>)rows);
            pos.CopyFrom((ReadOnlySpan<int>)new[] { p });
            AttentionOps.KvCacheAppend.Run(be, [step, pos], [kc, vc], da);
            AttentionOps.Decode.Run(be, [step, kc, vc, pos], [yd], da);
            var got = yd.ToArray();
            for (int s = 0; s < b; s++)
                for (int d = 0; d < c; d++)
                    Assert.Equal(full[(s * t + p) * c + d], got[s * c + d], 1e-5f);
        }
    }
}
