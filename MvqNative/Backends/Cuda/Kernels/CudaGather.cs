// CUDA launcher of gather_rows (native/kernels/gather.cu).
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>gather_rows: in [table(K,D), idx(N) I32], out [y(N,D)], y[n] = table[idx[n]] (NaN rows for indices outside [0, K)).</summary>
internal static class CudaGather
{
    private static readonly KernelRef RowsK = new("gather.cu", "gather_rows_forward");

    public static void Rows(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var table = c.In[0]; var idx = c.In[1]; var y = c.Out[0];
        if (table.Rank != 2 || idx.DType != DType.I32) throw new ArgumentException($"gather_rows: table [{table.ShapeString}] must be [K,D] and idx I32, got {idx}");
        int k = table.Dim(0), d = table.Dim(1), n = idx.Length;
        if (y.Length != (long)n * d) throw new ArgumentException($"gather_rows: y [{y.ShapeString}] must be [{n},{d}]");
        if ((long)n * d == 0) return;
        b.Kernel(RowsK).Launch(b.Blocks((long)n * d), CudaBackend.Threads, 0, CudaBackend.Ptr(table), CudaBackend.Ptr(idx), CudaBackend.Ptr(y), n, d, k);
    }
}
