// Embedding ops of the prior: embedding_forward / embedding_backward with their float64 reference.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Token embedding (also learned positions, with ids[n] = n % T).
/// forward: in [ids I32 (N), table (V, C)] out [y (N, C)], y[n] = table[ids[n]].
/// backward: in [ids I32 (N), dy (N, C)] out [dtable (V, C) +=], dtable[v] += sum over n with ids[n] = v of dy[n],
///   the rows of each v added in increasing n (deterministic, no float atomics).
/// An id outside [0, V) is an error on the CPU; on CUDA the forward writes a NaN row and the backward skips it.
/// </summary>
internal static class EmbeddingOps
{
    public static readonly OpDef Forward = new("embedding_forward")
    {
        Inputs = [Arg.InInt("ids"), Arg.In("table")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) =>
        {
            int n = ShapeText.Vector(c.In[0], "ids");
            var (_, d) = ShapeText.Matrix(c.In[1], "table", "V", "C");
            ShapeText.Require(c.Out[0], "y", n, d);
        },
        Cpu = CpuEmbedding.Forward,
        Cuda = Backends.Cuda.Kernels.CudaEmbedding.Forward,
        Reference = RefEmbedding.Forward,
        Grad = GradSpec.By("embedding_backward", [GradArg.In(0), GradArg.Dy(0)], 1),
        Doc = "ids[N] I32, table[V,C] -> y[N,C] = table[ids[n]]",
        Cases =
        [
            new OpCase("odd", [I(0, 7, 11), F(7, 5)], [Out(11, 5)]) { Tolerance = 0 },
            new OpCase("size1", [I(0, 1, 1), F(1, 1)], [Out(1, 1)]) { Tolerance = 0 },
            new OpCase("many rows wide", [I(0, 37, 301), F(37, 67)], [Out(301, 67)]) { Tolerance = 0 },
        ],
    };

    public static readonly OpDef BackwardOp = new("embedding_backward")
    {
        Inputs = [Arg.InInt("ids"), Arg.In("dy")],
        Outputs = [Arg.Acc("dtable")],
        Shapes = (in OpCall c) =>
        {
            int n = ShapeText.Vector(c.In[0], "ids");
            var (_, d) = ShapeText.Matrix(c.Out[0], "dtable", "V", "C");
            ShapeText.Require(c.In[1], "dy", n, d);
        },
        Cpu = CpuEmbedding.Backward,
        Cuda = Backends.Cuda.Kernels.CudaEmbedding.Backward,
        Reference = RefEmbedding.Backward,
        Doc = "ids[N] I32, dy[N,C] -> dtable[V,C] (+=), rows of one id summed in order of n",
        Cases =
        [
            new OpCase("odd", [I(0, 7, 11), F(11, 5)], [F(7, 5)]),
            new OpCase("size1", [I(0, 1, 1), F(1, 1)], [F(1, 1)]),
            // Many repeats per id (N >> V), odd width, a vocabulary with ids that never occur.
            new OpCase("repeats", [I(0, 13, 517), F(517, 33)], [F(40, 33)]),
            new OpCase("wide", [I(0, 50, 64), F(64, 300)], [F(50, 300)]),
        ],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 embedding.</summary>
internal static class RefEmbedding
{
    public static void Forward(RefCall c)
    {
        int n = c.InShapes[0][0], v = c.InShapes[1][0], d = c.InShapes[1][1];
        for (int i = 0; i < n; i++)
        {
            int id = (int)c.In[0][i];
            if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(c), $"embedding_forward: id {id} at {i} outside [0, {v})");
            for (int j = 0; j < d; j++) c.Out[0][i * d + j] = c.In[1][id * d + j];
        }
    }

    public static void Backward(RefCall c)
    {
        int n = c.InShapes[0][0], v = c.OutShapes[0][0], d = c.OutShapes[0][1];
        for (int i = 0; i < n; i++)
        {
            int id = (int)c.In[0][i];
            if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(c), $"embedding_backward: id {id} at {i} outside [0, {v})");
            for (int j = 0; j < d; j++) c.Out[0][id * d + j] += c.In[1][i * d + j];
        }
    }
}
