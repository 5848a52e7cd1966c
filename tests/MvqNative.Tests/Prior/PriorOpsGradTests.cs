// Thread-count independence of the CPU backward passes of the prior's ops, and decode = the last row of
// full attention (their central-difference checks are registry-driven: Gradients/GradientCheckTests).
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;
using static MvqNative.Tests.Gradients.OpRuns;

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
