// Op family: row gather (embedding-style lookup of codebook rows by index), with its float64
// reference. CPU kernel: Backends/Cpu/Kernels/CpuGather.cs; CUDA: Backends/Cuda/Kernels/CudaGather.cs.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// gather_rows: in [table(K, D), idx(N) I32], out [y(N, D)] (written): y[n] = table[idx[n]].
/// An index outside [0, K) is an error on the CPU (the CUDA kernel clamps nothing and must not be fed one).
/// </summary>
internal static class GatherOps
{
    public static readonly OpDef GatherRows = new("gather_rows")
    {
        Inputs = [Arg.In("table"), Arg.InInt("idx")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) =>
        {
            var table = c.In[0];
            if (table.Rank != 2) throw new ArgumentException($"table must be [K,D], got {ShapeText.Of(table)}");
            if (c.In[1].Rank != 1) throw new ArgumentException($"idx must be [N], got {ShapeText.Of(c.In[1])}");
            ShapeText.Require(c.Out[0], "y", c.In[1].Length, table.Shape[1]);
        },
        Cpu = CpuGather.Rows,
        Cuda = Backends.Cuda.Kernels.CudaGather.Rows,
        Reference = r =>
        {
            int d = r.InShapes[0][1];
            for (int n = 0; n < r.In[1].Length; n++)
                for (int j = 0; j < d; j++) r.Out[0][n * d + j] = r.In[0][(int)r.In[1][n] * d + j];
        },
        Doc = "y[n] = table[idx[n]]",
        Cases = [new OpCase("odd", [F(7, 5), I(0, 7, 11)], [Out(11, 5)]) { Tolerance = 0 },
                 new OpCase("size1", [F(1, 1), I(0, 1, 1)], [Out(1, 1)]) { Tolerance = 0 },
                 // More elements than one CUDA grid-stride pass of a small grid, odd row width.
                 new OpCase("many rows", [F(50, 9), I(0, 50, 301)], [Out(301, 9)]) { Tolerance = 0 }],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(GatherRows);
#pragma warning restore CA2255
}
