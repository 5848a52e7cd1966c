// Helpers for the central-difference gradient checks of the GEMM-based ops
// (conv2d, linear, upsample): float64 reference forward, CPU op runs, error metric.
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;

namespace MvqNative.Tests.Gradients;

/// <summary>
/// L = sum(g * f(inputs)) for a fixed random g; dL/d input by central differences on the
/// float64 reference forward, compared with the analytic backward (reference and CPU).
/// </summary>
internal static class GemmOpsGradCheck
{
    /// <summary>Uniform [-1, 1) values that are exact floats, so float and double runs see the same inputs.</summary>
    public static double[] Rand(Random rng, int n)
    {
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    public static int Count(int[] shape) { int n = 1; foreach (var d in shape) n *= d; return n; }

    /// <summary>Runs an op's float64 reference; outputs start from <paramref name="outInit"/> (copied).</summary>
    public static double[][] RunRef(OpDef op, double[][] ins, int[][] inShapes, double[][] outInit, int[][] outShapes, object? attrs)
    {
        var rc = new RefCall
        {
            In = ins, InShapes = inShapes,
            Out = outInit.Select(a => (double[])a.Clone()).ToArray(), OutShapes = outShapes, Attrs = attrs,
        };
        op.Reference!(rc);
        return rc.Out;
    }

    /// <summary>dL/d ins[wrt] for L = sum(g * y), y = forward(ins), by central differences.</summary>
    public static double[] Numeric(OpDef forward, double[][] ins, int[][] inShapes, int[] outShape, object? attrs, double[] g, int wrt, double eps = 1e-3)
    {
        var outInit = new[] { new double[Count(outShape)] };
        double Loss()
        {
            var y = RunRef(forward, ins, inShapes, outInit, [outShape], attrs)[0];
            double l = 0;
            for (int i = 0; i < y.Length; i++) l += g[i] * y[i];
            return l;
        }
        var p = ins[wrt];
        var grad = new double[p.Length];
        for (int i = 0; i < p.Length; i++)
        {
            double keep = p[i];
            p[i] = keep + eps; double lp = Loss();
            p[i] = keep - eps; double lm = Loss();
            p[i] = keep;
            grad[i] = (lp - lm) / (2 * eps);
        }
        return grad;
    }

    /// <summary>Runs an op on the CPU backend; outputs start from <paramref name="outInit"/>; returns the outputs.</summary>
    public static double[][] RunCpu(OpDef op, double[][] ins, int[][] inShapes, double[][] outInit, int[][] outShapes, object? attrs)
    {
        var b = CpuBackend.Instance;
        var tin = ins.Select((a, i) => b.FromArray(a.Select(v => (float)v).ToArray(), inShapes[i])).ToArray();
        var tout = outInit.Select((a, i) => b.FromArray(a.Select(v => (float)v).ToArray(), outShapes[i])).ToArray();
        try
        {
            op.Run(b, tin, tout, attrs);
            return tout.Select(t => t.ToArray().Select(v => (double)v).ToArray()).ToArray();
        }
        finally
        {
            foreach (var t in tin) t.Dispose();
            foreach (var t in tout) t.Dispose();
        }
    }

    /// <summary>Relative L2 error ||got - want|| / ||want||; fails with the worst element named.</summary>
    public static void AssertClose(string what, double[] want, double[] got, double relTol)
    {
        Assert.Equal(want.Length, got.Length);
        double err = 0, norm = 0, worst = 0; int at = -1;
        for (int i = 0; i < want.Length; i++)
        {
            Assert.False(double.IsNaN(got[i]), $"{what}: NaN at {i}");
            double d = got[i] - want[i];
            err += d * d; norm += want[i] * want[i];
            if (Math.Abs(d) > worst) { worst = Math.Abs(d); at = i; }
        }
        double rel = Math.Sqrt(err / Math.Max(norm, 1e-300));
        Assert.True(rel <= relTol, $"{what}: relative error {rel:E2} > {relTol:E0} (worst at {at}: got {(at >= 0 ? got[at] : 0):G9}, want {(at >= 0 ? want[at] : 0):G9})");
    }

    /// <summary>
    /// Checks a [x, w, b] -> [y] op with backward [x, w, dy] -> [dx, dw, db] (conv2d, linear):
    /// numeric gradients of x, w, b against the float64 reference backward (tight) and the
    /// CPU backward (float32). dx starts as NaN, so a backward that reads it instead of writing fails.
    /// </summary>
    public static void CheckAffine(OpDef forward, OpDef backward, int[] xShape, int[] wShape, int[] yShape, object? attrs, int seed)
    {
        var rng = new Random(seed);
        int[] bShape = [wShape[0]];
        var x = Rand(rng, Count(xShape)); var w = Rand(rng, Count(wShape)); var b = Rand(rng, Count(bShape));
        var g = Rand(rng, Count(yShape));
        double[][] ins = [x, w, b];
        int[][] inShapes = [xShape, wShape, bShape];
        var num = new[] { 0, 1, 2 }.Select(i => Numeric(forward, ins, inShapes, yShape, attrs, g, i)).ToArray();

        double[][] init = [Enumerable.Repeat(double.NaN, x.Length).ToArray(), new double[w.Length], new double[b.Length]];
        int[][] outShapes = [xShape, wShape, bShape];
        var refGrads = RunRef(backward, [x, w, g], [xShape, wShape, yShape], init, outShapes, attrs);
        var cpuGrads = RunCpu(backward, [x, w, g], [xShape, wShape, yShape], init, outShapes, attrs);
        string[] names = ["dx", "dw", "db"];
        for (int i = 0; i < 3; i++)
        {
            // Float64 throughout; the op is affine in each input, so central differences are exact up to rounding.
            AssertClose($"reference {names[i]}", num[i], refGrads[i], 1e-9);
            // Float32 sums of at most a few hundred products against float64.
            AssertClose($"cpu {names[i]}", num[i], cpuGrads[i], 1e-5);
        }
    }
}
