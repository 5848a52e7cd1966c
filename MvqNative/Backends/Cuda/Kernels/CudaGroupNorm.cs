// CUDA launchers of group_norm_forward / group_norm_backward (native/kernels/group_norm.cu).
using MvqNative.Backends.Cpu;
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>
/// Group norm on CUDA, one block per (sample, group). Backward writes per-(sample, channel)
/// partials [2, B, C] to the workspace; dbeta/dgamma += their column sums (one owner per channel).
/// </summary>
internal static class CudaGroupNorm
{
    private static readonly KernelRef ForwardK = new("group_norm.cu", "group_norm_forward");
    private static readonly KernelRef BackwardK = new("group_norm.cu", "group_norm_backward");

    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var at = c.A<GroupNormAttrs>();
        var (B, C, S) = GroupNormOps.Dims(c.In[0].Shape, at.Groups);
        int G = at.Groups;
        if ((long)B * C * S == 0) return;
        b.Kernel(ForwardK).Launch((uint)(B * G), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.Out[0]),
            CudaBackend.Ptr(c.Out[1]), CudaBackend.Ptr(c.Out[2]), G, C, S, at.Eps);
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var at = c.A<GroupNormAttrs>();
        var (B, C, S) = GroupNormOps.Dims(c.In[0].Shape, at.Groups);
        int G = at.Groups;
        if ((long)B * C * S == 0) return;
        long bc = (long)B * C;
        using var ws = b.LockWorkspace(2 * bc * 4, out ulong part);
        b.Kernel(BackwardK).Launch((uint)(B * G), CudaBackend.Threads, 0,
            CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.In[3]), CudaBackend.Ptr(c.In[4]),
            CudaBackend.Ptr(c.Out[0]), part, G, C, S);
        CudaReduce.ColumnSum(b, part, B, C, CudaBackend.Ptr(c.Out[2]));
        CudaReduce.ColumnSum(b, part + (ulong)(bc * 4), B, C, CudaBackend.Ptr(c.Out[1]));
    }
}
