// CPU kernel of gather_rows (Ops/GatherOps.cs).
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

internal static class CpuGather
{
    /// <summary>y[n] = table[idx[n]]; an index outside [0, K) throws.</summary>
    public static void Rows(in OpCall c)
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
}
