// CUDA launchers of nearest 2x upsampling (native/kernels/upsample.cu).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>upsample_nearest2x forward [x(B,C,H,W)] -> [y(B,C,2H,2W)] and backward [dy] -> [dx] (written).</summary>
internal static class CudaUpsample
{
    private static readonly KernelRef ForwardK = new("upsample.cu", "upsample_nearest2x_forward");
    private static readonly KernelRef BackwardK = new("upsample.cu", "upsample_nearest2x_backward");

    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (planes, h, w) = UpsampleOps.Check(c.In[0].Shape, c.Out[0].Shape);
        long n = 4L * planes * h * w;
        if (n == 0) return;
        b.Kernel(ForwardK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), planes, h, w);
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (planes, h, w) = UpsampleOps.Check(c.Out[0].Shape, c.In[0].Shape);
        long n = (long)planes * h * w;
        if (n == 0) return;
        b.Kernel(BackwardK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), planes, h, w);
    }
}
