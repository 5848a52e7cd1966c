// CUDA launchers of layer_norm_forward / layer_norm_backward (native/kernels/layer_norm.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>
/// Layer norm on CUDA, one warp per row (8 rows per block). Backward writes dy * xhat [N, C] to the
/// workspace; dgamma += its column sums, dbeta += the column sums of dy (one owner per column).
/// </summary>
internal static class CudaLayerNorm
{
    private static readonly KernelRef ForwardK = new("layer_norm.cu", "layer_norm_forward");
    private static readonly KernelRef BackwardK = new("layer_norm.cu", "layer_norm_backward");
    private const int RowsPerBlock = CudaBackend.Threads / 32;

    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, d) = LayerNormOps.Rows(c.In[0]);
        if ((long)n * d == 0) return;
        b.Kernel(ForwardK).Launch((uint)((n + RowsPerBlock - 1) / RowsPerBlock), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.Out[0]),
            CudaBackend.Ptr(c.Out[1]), CudaBackend.Ptr(c.Out[2]), n, d, c.A<LayerNormAttrs>().Eps);
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, d) = LayerNormOps.Rows(c.In[0]);
        if ((long)n * d == 0) return;
        using var ws = b.LockWorkspace((long)n * d * 4, out ulong part);
        b.Kernel(BackwardK).Launch((uint)((n + RowsPerBlock - 1) / RowsPerBlock), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.In[3]), CudaBackend.Ptr(c.In[4]),
            CudaBackend.Ptr(c.Out[0]), part, n, d);
        CudaReduce.ColumnSum(b, part, n, d, CudaBackend.Ptr(c.Out[1]));
        CudaReduce.ColumnSum(b, CudaBackend.Ptr(c.In[4]), n, d, CudaBackend.Ptr(c.Out[2]));
    }
}
