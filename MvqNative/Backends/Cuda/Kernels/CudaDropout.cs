// CUDA launcher of dropout_apply (native/kernels/dropout.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

internal static class CudaDropout
{
    private static readonly KernelRef ApplyK = new("dropout.cu", "dropout_apply");

    /// <summary>dropout: in [x] out [y]; attrs <see cref="DropoutAttrs"/>.</summary>
    public static void Apply(in OpCall c)
    {
        var a = c.A<DropoutAttrs>();
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length;
        if (n == 0) return;
        b.Kernel(ApplyK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), n, a.Seed, a.Threshold, a.Scale);
    }
}
