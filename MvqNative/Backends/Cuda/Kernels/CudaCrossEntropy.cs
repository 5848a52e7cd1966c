// CUDA launchers of cross_entropy_forward / cross_entropy_backward (native/kernels/cross_entropy.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Masked cross-entropy on CUDA, one warp per row (8 rows per block); invalid rows give NaN (no host sync to check them).</summary>
internal static class CudaCrossEntropy
{
    private static readonly KernelRef ForwardK = new("cross_entropy.cu", "cross_entropy_forward");
    private static readonly KernelRef BackwardK = new("cross_entropy.cu", "cross_entropy_backward");
    private const int RowsPerBlock = CudaBackend.Threads / 32;

    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Dim(0), v = c.In[0].Dim(1);
        if ((long)n * v == 0) return;
        b.Kernel(ForwardK).Launch((uint)((n + RowsPerBlock - 1) / RowsPerBlock), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.Out[0]), CudaBackend.Ptr(c.Out[1]), n, v);
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Dim(0), v = c.In[0].Dim(1);
        if ((long)n * v == 0) return;
        b.Kernel(BackwardK).Launch((uint)((n + RowsPerBlock - 1) / RowsPerBlock), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.In[3]), CudaBackend.Ptr(c.In[4]),
            CudaBackend.Ptr(c.Out[0]), n, v);
    }
}
