// Gradient checks of vq_backward by central differences of the VQ loss in float64,
// with the code assignment held fixed (the argmin is piecewise constant).
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using Xunit;

namespace MvqNative.Tests.Gradients;

public class VqGradTests
{
    [Fact]
    public void VqBackwardMatchesCentralDifferencesOfTheLoss()
    {
        var cpu = CpuBackend.Instance;
        int n = 9, d = 4, k = 3;
        double beta = 0.25, scale = 0.7;
        var rng = new Random(17);
        var z = Enumerable.Range(0, n * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var cb = Enumerable.Range(0, k * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var idx = Enumerable.Range(0, n).Select(i => i % k).ToArray();
        var q = new float[n * d];
        for (int i = 0; i < n; i++) Array.Copy(cb, idx[i] * d, q, i * d, d);

        using var tz = cpu.FromArray(z, n, d); using var tq = cpu.FromArray(q, n, d);
        using var ti = cpu.FromArray(idx, n); using var dq = cpu.Zeros(n, d);
        using var dz = cpu.Empty(n, d); using var dc = cpu.Zeros(k, d);
        VqOps.BackwardOp.Run(cpu, [tz, tq, ti, dq], [dz, dc], new VqBackwardAttrs((float)beta, true, (float)scale));

        // L(z, C) = scale * (mean((sg(z) - C[idx])^2) + beta * mean((z - sg(C[idx]))^2)).
        double Mse(double[] zz, double[] cc)
        {
            double s = 0;
            for (int i = 0; i < n; i++)
                for (int t = 0; t < d; t++) { double df = zz[i * d + t] - cc[idx[i] * d + t]; s += df * df; }
            return s / (n * d);
        }
        var zd = z.Select(v => (double)v).ToArray();
        var cd = cb.Select(v => (double)v).ToArray();
        const double h = 1e-5;
        var gotC = dc.ToArray();
        for (int j = 0; j < k * d; j++)
        {
            var p = (double[])cd.Clone(); p[j] += h;
            var m = (double[])cd.Clone(); m[j] -= h;
            double num = scale * (Mse(zd, p) - Mse(zd, m)) / (2 * h); // codebook term only: z detached
            Assert.Equal(num, gotC[j], 5); // float32 op vs float64 differences: 1e-5 absolute
        }
        var gotZ = dz.ToArray();
        for (int j = 0; j < n * d; j++)
        {
            var p = (double[])zd.Clone(); p[j] += h;
            var m = (double[])zd.Clone(); m[j] -= h;
            double num = scale * beta * (Mse(p, cd) - Mse(m, cd)) / (2 * h); // commitment term only: q detached
            Assert.Equal(num, gotZ[j], 5);
        }
    }
}
