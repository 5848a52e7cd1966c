// CUDA launchers of activation_forward / activation_backward (native/kernels/activation.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Pointwise activations on the CUDA backend; the kind travels as an int (ActivationKind order). GELU is its own family (CudaGelu).</summary>
internal static class CudaActivation
{
    private static readonly KernelRef ForwardK = new("activation.cu", "activation_forward");
    private static readonly KernelRef BackwardK = new("activation.cu", "activation_backward");

    public static void Forward(in OpCall c)
    {
        var a = c.A<ActivationAttrs>();
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length;
        if (n == 0) return;
        b.Kernel(ForwardK).Launch(b.Blocks(n), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), n, (int)a.Kind, a.Slope);
    }

    public static void Backward(in OpCall c)
    {
        var a = c.A<ActivationAttrs>();
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length;
        if (n == 0) return;
        b.Kernel(BackwardK).Launch(b.Blocks(n), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), n, (int)a.Kind, a.Slope);
    }
}
