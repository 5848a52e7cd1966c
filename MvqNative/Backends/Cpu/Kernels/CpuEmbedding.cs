// CPU embedding lookup and its deterministic backward (rows grouped by id with a counting sort).
using System.Buffers;
using System.Numerics.Tensors;
using MvqNative.Ops;
using MvqNative.Tensors;
using Tensor = MvqNative.Tensors.Tensor;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// embedding_forward copies rows in parallel. embedding_backward groups the rows of dy by id
/// (a stable counting sort of n by ids[n]), then each id's row of dtable adds its dy rows in
/// increasing n, ids split across threads: bit-identical results for any thread count.
/// </summary>
internal static class CpuEmbedding
{
    public static void Forward(in OpCall call)
    {
        const string op = "embedding_forward";
        var ids = ((CpuBuffer)call.In[0].Buffer).Data; int io = (int)call.In[0].Offset;
        var table = ((CpuBuffer)call.In[1].Buffer).Data; int to = (int)call.In[1].Offset;
        var y = ((CpuBuffer)call.Out[0].Buffer).Data; int yo = (int)call.Out[0].Offset;
        int n = call.In[0].Length, v = call.In[1].Dim(0), c = call.In[1].Dim(1);
        var idSpan = call.In[0].IntSpan;
        for (int i = 0; i < n; i++)
            if ((uint)idSpan[i] >= (uint)v) throw new ArgumentOutOfRangeException(nameof(call), $"{op}: id {idSpan[i]} at {i} outside [0, {v})");
        CpuParallel.For(n, Math.Max(1, 16384 / Math.Max(1, c)), (s, e) =>
        {
            var idv = System.Runtime.InteropServices.MemoryMarshal.Cast<float, int>(ids.AsSpan(io, n));
            for (int i = s; i < e; i++) table.AsSpan(to + idv[i] * c, c).CopyTo(y.AsSpan(yo + i * c, c));
        });
    }

    public static void Backward(in OpCall call)
    {
        const string op = "embedding_backward";
        int n = call.In[0].Length, v = call.Out[0].Dim(0), c = call.Out[0].Dim(1);
        var idSpan = call.In[0].IntSpan;
        var start = ArrayPool<int>.Shared.Rent(v + 1);
        var order = ArrayPool<int>.Shared.Rent(Math.Max(1, n));
        try
        {
            // Stable counting sort: order[start[id]..start[id+1]) are the n with ids[n] = id, increasing.
            Array.Clear(start, 0, v + 1);
            for (int i = 0; i < n; i++)
            {
                int id = idSpan[i];
                if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(call), $"{op}: id {id} at {i} outside [0, {v})");
                start[id + 1]++;
            }
            for (int k = 0; k < v; k++) start[k + 1] += start[k];
            var fill = ArrayPool<int>.Shared.Rent(v);
            try
            {
                Array.Copy(start, fill, v);
                for (int i = 0; i < n; i++) order[fill[idSpan[i]]++] = i;
            }
            finally { ArrayPool<int>.Shared.Return(fill); }

            var dy = ((CpuBuffer)call.In[1].Buffer).Data; int dyo = (int)call.In[1].Offset;
            var dt = ((CpuBuffer)call.Out[0].Buffer).Data; int dto = (int)call.Out[0].Offset;
            CpuParallel.For(v, Math.Max(1, 8192 / Math.Max(1, c * Math.Max(1, n / Math.Max(1, v)))), (s, e) =>
            {
                for (int id = s; id < e; id++)
                {
                    var row = dt.AsSpan(dto + id * c, c);
                    for (int k = start[id]; k < start[id + 1]; k++)
                        TensorPrimitives.Add(row, dy.AsSpan(dyo + order[k] * c, c), row);
                }
            });
        }
        finally
        {
            ArrayPool<int>.Shared.Return(start);
            ArrayPool<int>.Shared.Return(order);
        }
    }
}
