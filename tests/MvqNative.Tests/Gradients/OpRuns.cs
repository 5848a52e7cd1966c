// Helpers for tests that run single ops: random exact-float inputs, the float64 reference, a CPU run.
using MvqNative.Backends.Cpu;
using MvqNative.Ops;
using MvqNative.Tensors;
using Xunit;

namespace MvqNative.Tests.Gradients;

/// <summary>Runs ops on double arrays: the float64 reference, or the CPU backend in float32.</summary>
internal static class OpRuns
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

}
