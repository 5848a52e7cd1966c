// Closed-form checks of the VQ ops: nearest-code lookup against brute force, the
// straight-through gradient, the codebook gradient and the EMA update by hand, histogram,
// loss, and bit-determinism of the codebook gradient.
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Quantizers;

public class VqOpsTests
{
    private static readonly CpuBackend Cpu = CpuBackend.Instance;

    private static float[] Uniform(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    [Theory]
    [InlineData(200, 37, 13)]
    [InlineData(50, 300, 67)] // D=67: SIMD tail, and K spans several codebook tiles
    [InlineData(1, 1, 1)]
    public void LookupPicksTheTrueNearestEntry(int n, int k, int d)
    {
        var rng = new Random(n * 1000 + k);
        var z = Uniform(rng, n * d);
        var cb = Uniform(rng, k * d);
        using var tz = Cpu.FromArray(z, n, d);
        using var tc = Cpu.FromArray(cb, k, d);
        using var idx = Cpu.EmptyInt(n);
        using var q = Cpu.Empty(n, d);
        VqOps.Lookup.Run(Cpu, [tz, tc], [idx, q]);
        var gi = idx.ToIntArray();
        var gq = q.ToArray();
        for (int i = 0; i < n; i++)
        {
            double best = double.PositiveInfinity; int arg = -1;
            for (int j = 0; j < k; j++)
            {
                double s = 0;
                for (int t = 0; t < d; t++) { double df = (double)z[i * d + t] - cb[j * d + t]; s += df * df; }
                if (s < best) { best = s; arg = j; }
            }
            Assert.Equal(arg, gi[i]);
            for (int t = 0; t < d; t++) Assert.Equal(cb[arg * d + t], gq[i * d + t]);
        }
    }

    [Fact]
    public void LookupBreaksTiesTowardsTheSmallestIndex()
    {
        // Entries 1 and 3 are equal; entry 4 is also at the same distance from z row 1.
        float[] cb = [5, 5, 1, 2, 9, 9, 1, 2, 3, 4];
        float[] z = [1, 2, 2, 3];
        using var tz = Cpu.FromArray(z, 2, 2);
        using var tc = Cpu.FromArray(cb, 5, 2);
        using var idx = Cpu.EmptyInt(2);
        using var q = Cpu.Empty(2, 2);
        VqOps.Lookup.Run(Cpu, [tz, tc], [idx, q]);
        Assert.Equal([1, 1], idx.ToIntArray()); // row 1 at (2,3): distance 2 to entries 1, 3 and 4
    }

    [Fact]
    public void StraightThroughGradientIsDqPlusTheCommitmentTermExactly()
    {
        int n = 23, d = 7, k = 5;
        var rng = new Random(3);
        var z = Uniform(rng, n * d); var q = Uniform(rng, n * d); var dq = Uniform(rng, n * d);
        var idx = Enumerable.Range(0, n).Select(i => rng.Next(k)).ToArray();
        var dcInit = Uniform(rng, k * d);
        foreach (bool gradMode in new[] { true, false })
        {
            using var tz = Cpu.FromArray(z, n, d); using var tq = Cpu.FromArray(q, n, d);
            using var ti = Cpu.FromArray(idx, n); using var tdq = Cpu.FromArray(dq, n, d);
            using var dz = Cpu.Empty(n, d); using var dc = Cpu.FromArray(dcInit, k, d);
            VqOps.BackwardOp.Run(Cpu, [tz, tq, ti, tdq], [dz, dc], new VqBackwardAttrs(0.25f, gradMode, 1.5f));
            float commit = (float)(1.5 * 0.25 * 2.0 / (n * d));
            var got = dz.ToArray();
            for (int i = 0; i < n * d; i++) Assert.Equal(dq[i] + commit * (z[i] - q[i]), got[i]);
            if (!gradMode) Assert.Equal(dcInit, dc.ToArray()); // EMA mode: untouched, bit for bit
        }
    }

    [Fact]
    public void CodebookGradientMatchesAHandComputation()
    {
        // 2 codes, 3 tokens, D = 2: dC[k] += 2 * sum_{idx_i = k} (q_i - z_i) / (N D).
        float[] z = [1, 2, 3, 4, 0, -1];
        float[] cb = [0, 0, 2, 2];
        int[] idx = [0, 1, 0];
        float[] q = [0, 0, 2, 2, 0, 0];
        using var tz = Cpu.FromArray(z, 3, 2); using var tq = Cpu.FromArray(q, 3, 2);
        using var ti = Cpu.FromArray(idx, 3); using var dq = Cpu.Zeros(3, 2);
        using var dz = Cpu.Empty(3, 2); using var dc = Cpu.FromArray([1f, 1f, 1f, 1f], 2, 2);
        VqOps.BackwardOp.Run(Cpu, [tz, tq, ti, dq], [dz, dc], new VqBackwardAttrs(0.25f, true));
        // code 0: (0-1)+(0-0) = -1, (0-2)+(0+1) = -1 -> 2*(-1)/6 = -1/3 each; code 1: (2-3, 2-4) -> (-1/3, -2/3).
        double[] want = [1 - 1.0 / 3, 1 - 1.0 / 3, 1 - 1.0 / 3, 1 - 2.0 / 3];
        var got = dc.ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(want[i], got[i], 6);
        // dz = 0.25 * 2 (z - q) / 6
        var gz = dz.ToArray();
        for (int i = 0; i < 6; i++) Assert.Equal(0.25 * 2 * (z[i] - q[i]) / 6, gz[i], 6);
    }

    [Fact]
    public void CodebookGradientIsBitIdenticalAcrossRunsAndThreadCounts()
    {
        int n = 20011, d = 16, k = 64;
        var rng = new Random(5);
        var z = Uniform(rng, n * d); var q = Uniform(rng, n * d); var dq = Uniform(rng, n * d);
        var idx = Enumerable.Range(0, n).Select(i => rng.Next(k)).ToArray();
        float[] Run()
        {
            using var tz = Cpu.FromArray(z, n, d); using var tq = Cpu.FromArray(q, n, d);
            using var ti = Cpu.FromArray(idx, n); using var tdq = Cpu.FromArray(dq, n, d);
            using var dz = Cpu.Empty(n, d); using var dc = Cpu.Zeros(k, d);
            VqOps.BackwardOp.Run(Cpu, [tz, tq, ti, tdq], [dz, dc], new VqBackwardAttrs(0.25f, true));
            return dc.ToArray();
        }
        var first = Run();
        Assert.Equal(first, Run());
        int saved = CpuParallel.Threads;
        try
        {
            CpuParallel.Threads = 1;
            var single = Run();
            CpuParallel.Threads = 7;
            var seven = Run();
            Assert.Equal(first, single);
            Assert.Equal(first, seven);
        }
        finally { CpuParallel.Threads = saved; }
    }

    [Fact]
    public void EmaUpdateMatchesAHandComputation()
    {
        // K = 2, D = 1, decay 0.5, eps 0 (exact): z = [1, 3, 10], idx = [0, 0, 1].
        using var z = Cpu.FromArray([1f, 3f, 10f], 3, 1);
        using var idx = Cpu.FromArray([0, 0, 1], 3);
        using var cb = Cpu.Zeros(2, 1);
        using var cs = Cpu.FromArray([1f, 1f], 2);
        using var es = Cpu.FromArray([0.5f, 2f], 2, 1);
        VqOps.EmaUpdate.Run(Cpu, [z, idx], [cb, cs, es], new VqEmaAttrs(0.5f, 0f));
        // cs = 0.5*1 + 0.5*2 = 1.5, 0.5*1 + 0.5*1 = 1; es = 0.25 + 0.5*4 = 2.25, 1 + 0.5*10 = 6
        Assert.Equal([1.5f, 1f], cs.ToArray());
        Assert.Equal([2.25f, 6f], es.ToArray());
        // n = 2.5, n_k = cs_k exactly when eps = 0: codebook = 2.25/1.5, 6/1
        Assert.Equal([1.5f, 6f], cb.ToArray());

        // With Laplace smoothing: n_k = (cs_k + eps) / (n + K eps) * n.
        using var cs2 = Cpu.FromArray([1f, 1f], 2);
        using var es2 = Cpu.FromArray([0.5f, 2f], 2, 1);
        VqOps.EmaUpdate.Run(Cpu, [z, idx], [cb, cs2, es2], new VqEmaAttrs(0.5f, 0.1f));
        double n0 = (1.5 + 0.1) / (2.5 + 0.2) * 2.5, n1 = (1 + 0.1) / (2.5 + 0.2) * 2.5;
        var got = cb.ToArray();
        Assert.Equal(2.25 / n0, got[0], 5);
        Assert.Equal(6 / n1, got[1], 5);
    }

    [Fact]
    public void HistogramAccumulatesCounts()
    {
        using var idx = Cpu.FromArray([2, 0, 2, 2, 4], 5);
        using var counts = Cpu.FromArray([1f, 0f, 0f, 0f, 0f, 7f], 6);
        VqOps.Histogram.Run(Cpu, [idx], [counts]);
        Assert.Equal([2f, 0f, 3f, 0f, 1f, 7f], counts.ToArray());
        using var bad = Cpu.FromArray([6], 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => VqOps.Histogram.Run(Cpu, [bad], [counts]));
    }

    [Fact]
    public void LossIsTheMeanSquaredDifference()
    {
        using var z = Cpu.FromArray([1f, 2f, 3f], 3, 1);
        using var q = Cpu.FromArray([0f, 2f, 5f], 3, 1);
        using var l = Cpu.Empty(1);
        VqOps.Loss.Run(Cpu, [z, q], [l]);
        Assert.Equal(5f / 3f, l.ToArray()[0], 6);
    }
}
