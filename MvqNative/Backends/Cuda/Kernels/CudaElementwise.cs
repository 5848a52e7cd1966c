// CUDA launchers of the elementwise ops (kernels in native/kernels/elementwise.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>add (y = a + b) and axpby (y = alpha a + beta b) on the CUDA backend.</summary>
internal static class CudaElementwise
{
    private static readonly KernelRef AddK = new("elementwise.cu", "add_forward");
    private static readonly KernelRef AxpbyK = new("elementwise.cu", "axpby_forward");
    private static readonly KernelRef BroadcastK = new("elementwise.cu", "channel_broadcast");

    public static void Add(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.Out[0].Length;
        if (n == 0) return;
        b.Kernel(AddK).Launch(b.Blocks(n), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), n);
    }

    public static void Axpby(in OpCall c)
    {
        var at = c.A<AxpbyAttrs>();
        var b = (CudaBackend)c.Backend;
        int n = c.Out[0].Length;
        if (n == 0) return;
        b.Kernel(AxpbyK).Launch(b.Blocks(n), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), at.Alpha, at.Beta, n);
    }

    /// <summary>y[(b*channels + c)*inner + q] = v[c] for y [outer, channels, inner] (bias before a GEMM with beta 1).</summary>
    internal static void ChannelBroadcast(CudaBackend b, ulong v, ulong y, int outer, int channels, int inner)
    {
        long n = (long)outer * channels * inner;
        if (n == 0) return;
        b.Kernel(BroadcastK).Launch(b.Blocks(n), CudaBackend.Threads, 0, v, y, outer, channels, inner);
    }
}
