// CUDA launchers of gelu_forward / gelu_backward (native/kernels/gelu.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>GELU (tanh approximation) on the CUDA backend: one thread per element, grid-stride.</summary>
internal static class CudaGelu
{
    private static readonly KernelRef ForwardK = new("gelu.cu", "gelu_forward");
    private static readonly KernelRef BackwardK = new("gelu.cu", "gelu_backward");

    /// <summary>gelu_forward (tanh approximation): in [x] out [y].</summary>
    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length;
        if (n == 0) return;
        b.Kernel(ForwardK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), n);
    }

    /// <summary>gelu_backward: in [x, dy] out [dx].</summary>
    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length;
        if (n == 0) return;
        b.Kernel(BackwardK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), n);
    }
}
