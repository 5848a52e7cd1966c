// CUDA launchers of nchw_to_tokens / tokens_to_nchw (native/kernels/layout.cu): tiled batched transposes.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>nchw_to_tokens: [x(B,C,H,W)] -> [t(B*H*W,C)]; tokens_to_nchw: the inverse.</summary>
internal static class CudaLayout
{
    private static readonly KernelRef ToTokensK = new("layout.cu", "nchw_to_tokens_forward");
    private static readonly KernelRef ToNchwK = new("layout.cu", "tokens_to_nchw_forward");

    /// <summary>Grid of 32x32 tiles over a rows x cols matrix per image.</summary>
    private static Dim3 Grid(int rows, int cols, int batch) => new((uint)((cols + 31) / 32), (uint)((rows + 31) / 32), (uint)batch);

    public static void NchwToTokens(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, ch, hw) = LayoutOps.Check(c.In[0].Shape, c.Out[0].Shape);
        if ((long)n * ch * hw == 0) return;
        b.Kernel(ToTokensK).Launch(Grid(ch, hw, n), new Dim3(32, 8), 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), ch, hw);
    }

    public static void TokensToNchw(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, ch, hw) = LayoutOps.Check(c.Out[0].Shape, c.In[0].Shape);
        if ((long)n * ch * hw == 0) return;
        b.Kernel(ToNchwK).Launch(Grid(hw, ch, n), new Dim3(32, 8), 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), ch, hw);
    }
}
