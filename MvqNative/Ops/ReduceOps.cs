// Reductions: sum_squares (the global gradient norm is the square root of a sum of these).
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Reductions to a device scalar, so no host sync is needed to use the result.</summary>
internal static class ReduceOps
{
    /// <summary>in [x (any shape)], out [s [1]] (accumulated): s += sum x^2.</summary>
    public static readonly OpDef SumSquares = new("sum_squares")
    {
        Inputs = [Arg.In("x")],
        Outputs = [Arg.Acc("s")],
        Shapes = (in OpCall c) => ShapeText.Require(c.Out[0], "s", 1),
        Cpu = CpuReduce.SumSquares,
        Cuda = Backends.Cuda.Kernels.CudaReduce.SumSquares,
        Reference = r => { double s = 0; foreach (var v in r.In[0]) s += v * v; r.Out[0][0] += s; },
        Doc = "s[0] += sum x^2 (accumulates; double accumulation on the CPU); in [x] out [s(1)]",
        Cases =
        [
            new OpCase("odd", [F(7, 13, 11)], [F(1)]) { Tolerance = 1e-12 },
            new OpCase("several chunks", [F(40009)], [F(1)]) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1)], [F(1)]) { Tolerance = 1e-12 },
            // CUDA: many blocks of float partials, and more elements than the largest grid covers in one
            // pass; float partials (the CPU sums in double) round at ~1e-7 relative, hence 1e-10 on the square.
            new OpCase("multi-block", [F(100_003)], [F(1)]) { Tolerance = 1e-10 },
            new OpCase("beyond max blocks", [F(3, 1000, 1001)], [F(1)]) { Tolerance = 1e-10 },
        ],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(SumSquares);
#pragma warning restore CA2255
}
