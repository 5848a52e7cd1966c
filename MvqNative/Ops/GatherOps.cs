using System.Runtime.CompilerServices;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of gather_rows: the table's row count, for bounds checks.</summary>
public sealed record GatherAttrs(int Rows);

/// <summary>
/// gather_rows: y[n, :] = table[idx[n], :]. in [table(K, D), idx(N) I32] out [y(N, D)].
/// Used to decode codes (codebook rows by index). An index outside [0, K) is an error.
/// </summary>
public static class GatherOps
{
    public static readonly OpDef GatherRows = new("gather_rows")
    {
        Cpu = Cpu,
        Cuda = Backends.Cuda.Kernels.CudaGather.Rows,
        Reference = r =>
        {
            int d = r.InShapes[0][1];
            for (int n = 0; n < r.In[1].Length; n++)
                for (int j = 0; j < d; j++) r.Out[0][n * d + j] = r.In[0][(int)r.In[1][n] * d + j];
        },
        Doc = "y[n] = table[idx[n]]",
        Cases = [new OpCase("odd", [F(7, 5), I(0, 7, 11)], [Out(11, 5)], new GatherAttrs(7)) { Tolerance = 0 },
                 new OpCase("size1", [F(1, 1), I(0, 1, 1)], [Out(1, 1)], new GatherAttrs(1)) { Tolerance = 0 },
                 // More elements than one CUDA grid-stride pass of a small grid, odd row width.
                 new OpCase("many rows", [F(50, 9), I(0, 50, 301)], [Out(301, 9)], new GatherAttrs(50)) { Tolerance = 0 }],
    };

    private static void Cpu(in OpCall c)
    {
        var table = c.In[0].Span; var idx = c.In[1].IntSpan; var y = c.Out[0].Span;
        int k = c.In[0].Dim(0), d = c.In[0].Dim(1);
        for (int n = 0; n < idx.Length; n++)
        {
            int i = idx[n];
            if ((uint)i >= (uint)k) throw new ArgumentOutOfRangeException(nameof(c), $"gather_rows: index {i} at {n} outside [0, {k})");
            table.Slice(i * d, d).CopyTo(y.Slice(n * d, d));
        }
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(GatherRows);
#pragma warning restore CA2255
}
