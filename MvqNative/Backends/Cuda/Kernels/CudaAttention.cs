// CUDA launchers of attention_forward / attention_backward / kv_cache_append / attention_decode (native/kernels/attention.cu).
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>
/// Attention on CUDA: one warp per query (forward, dq), per key (dk, dv) or per (sequence, head)
/// (decode), 8 warps per block. The backward's D_t = dy_t . y_t goes through the workspace
/// from the dq pass to the dk/dv pass. Head width at most 256 (8 dimensions per lane).
/// </summary>
internal static class CudaAttention
{
    private static readonly KernelRef ForwardK = new("attention.cu", "attention_forward");
    private static readonly KernelRef BackwardK = new("attention.cu", "attention_backward");
    private static readonly KernelRef BackwardKvK = new("attention.cu", "attention_backward_dkv");
    private static readonly KernelRef AppendK = new("attention.cu", "kv_cache_append");
    private static readonly KernelRef DecodeK = new("attention.cu", "attention_decode");
    private const int WarpsPerBlock = CudaBackend.Threads / 32;
    /// <summary>Largest head width: 32 lanes x MVQ_ATT_DIMS (attention.cu).</summary>
    internal const int MaxHeadWidth = 256;

    private static uint BlocksFor(long warps) => (uint)((warps + WarpsPerBlock - 1) / WarpsPerBlock);

    private static int HeadWidth(Tensor qkv, int rows, int heads, string op)
    {
        int c = qkv.Dim(1) / 3, hd = c / heads;
        if (hd > MaxHeadWidth) throw new ArgumentException($"{op}: head width {hd} exceeds {MaxHeadWidth} on CUDA");
        return c;
    }

    public static void Forward(in OpCall c)
    {
        const string op = "attention_forward";
        var b = (CudaBackend)c.Backend;
        var a = c.A<AttentionAttrs>();
        int C = HeadWidth(c.In[0], a.B * a.T, a.H, op);
        long warps = (long)a.B * a.H * a.T;
        if (warps == 0 || C == 0) return;
        b.Kernel(ForwardK).Launch(BlocksFor(warps), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.Out[0]), CudaBackend.Ptr(c.Out[1]), a.B, a.T, a.H, C);
    }

    public static void Backward(in OpCall c)
    {
        const string op = "attention_backward";
        var b = (CudaBackend)c.Backend;
        var a = c.A<AttentionAttrs>();
        int C = HeadWidth(c.In[0], a.B * a.T, a.H, op);
        long warps = (long)a.B * a.H * a.T;
        if (warps == 0 || C == 0) return;
        using var ws = b.LockWorkspace(warps * 4, out ulong dsum);
        b.Kernel(BackwardK).Launch(BlocksFor(warps), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.In[3]),
            CudaBackend.Ptr(c.Out[0]), dsum, a.B, a.T, a.H, C);
        b.Kernel(BackwardKvK).Launch(BlocksFor(warps), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.In[3]), dsum,
            CudaBackend.Ptr(c.Out[0]), a.B, a.T, a.H, C);
    }

    public static void KvCacheAppend(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var a = c.A<AttentionAttrs>();
        int C = c.In[0].Dim(1) / 3;
        if ((long)a.B * C == 0) return;
        b.Kernel(AppendK).Launch(b.Blocks((long)a.B * C), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.Out[0]), CudaBackend.Ptr(c.Out[1]), a.B, a.T, C);
    }

    public static void Decode(in OpCall c)
    {
        const string op = "attention_decode";
        var b = (CudaBackend)c.Backend;
        var a = c.A<AttentionAttrs>();
        int C = HeadWidth(c.In[0], a.B, a.H, op);
        long warps = (long)a.B * a.H;
        if (warps == 0 || C == 0) return;
        b.Kernel(DecodeK).Launch(BlocksFor(warps), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.In[3]),
            CudaBackend.Ptr(c.Out[0]), a.B, a.T, a.H, C);
    }
}
