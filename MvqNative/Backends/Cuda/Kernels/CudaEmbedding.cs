// CUDA launchers of embedding_forward / embedding_backward (native/kernels/embedding.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Embedding on CUDA: a grid-stride gather; the backward gives each vocabulary row one owner block (no atomics).</summary>
internal static class CudaEmbedding
{
    private static readonly KernelRef ForwardK = new("embedding.cu", "embedding_forward");
    private static readonly KernelRef BackwardK = new("embedding.cu", "embedding_backward");

    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length, v = c.In[1].Dim(0), d = c.In[1].Dim(1);
        if ((long)n * d == 0) return;
        b.Kernel(ForwardK).Launch(b.Blocks((long)n * d), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), n, d, v);
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length, v = c.Out[0].Dim(0), d = c.Out[0].Dim(1);
        if ((long)n * d * v == 0) return;
        // Threads over columns: up to 256, a multiple of 32.
        int threads = Math.Min(256, (d + 31) / 32 * 32);
        b.Kernel(BackwardK).Launch((uint)Math.Min(v, 65535), threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), n, d, v);
    }
}
