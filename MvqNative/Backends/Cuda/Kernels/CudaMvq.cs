// CUDA launchers of the simple MVQ bottleneck ops (native/kernels/mvq.cu): word selection, mask
// application, the frozen batch-norm family, and token mixing (strided-batched cuBLAS GEMMs,
// deterministic column sums). mvq_hidden_stats and mvq_score are the mvq_score family (CudaMvqScore.cs).
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Shapes and math: <see cref="MvqOps"/>.</summary>
internal static class CudaMvq
{
    private static readonly KernelRef SelectK = new("mvq.cu", "mvq_select_words_forward");
    private static readonly KernelRef MaskK = new("mvq.cu", "mask_apply_forward");
    private static readonly KernelRef BnFwdK = new("mvq.cu", "batchnorm_frozen_forward");
    private static readonly KernelRef BnBwdK = new("mvq.cu", "batchnorm_frozen_backward");
    private static readonly KernelRef FoldK = new("mvq.cu", "batchnorm_fold");
    private static readonly KernelRef RunningK = new("mvq.cu", "batchnorm_running_update");

    private static ulong P(Tensors.Tensor t) => CudaBackend.Ptr(t);

    public static void SelectWords(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var m = c.In[0];
        int n = m.Dim(0);
        if (n == 0) return;
        b.Kernel(SelectK).Launch(b.Blocks(n), CudaBackend.Threads, 0, P(m), P(c.In[1]), P(c.Out[0]), n, m.Dim(1), b.Faults.Word);
    }

    public static void MaskApply(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (_, l, d2) = MvqOps.MaskDims(c.In[0].Shape, c.In[1].Shape);
        long total = c.In[0].Length;
        if (total == 0) return;
        b.Kernel(MaskK).Launch(b.Blocks(total), CudaBackend.Threads, 0, P(c.In[0]), P(c.In[1]), P(c.Out[0]), total, l, d2);
    }

    public static void BnFrozenForward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int f = c.In[1].Length, n = MvqOps.Rows(c.In[0], f);
        long total = (long)n * f;
        if (total == 0) return;
        b.Kernel(BnFwdK).Launch(b.Blocks(total), CudaBackend.Threads, 0, P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.In[3]), P(c.In[4]), P(c.Out[0]), total, f);
    }

    public static void BnFrozenBackward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int f = c.In[1].Length, n = MvqOps.Rows(c.In[0], f);
        if (f == 0) return;
        b.Kernel(BnBwdK).Launch((uint)((f + 31) / 32), 256, 0, P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.In[3]), P(c.In[4]),
            P(c.Out[0]), P(c.Out[1]), P(c.Out[2]), n, f);
    }

    public static void BnFold(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int f = c.In[0].Length;
        if (f == 0) return;
        b.Kernel(FoldK).Launch(b.Blocks(f), CudaBackend.Threads, 0, P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.In[3]), P(c.Out[0]), P(c.Out[1]), P(c.Out[2]), f,
            c.A<BatchNormAttrs>().Eps);
    }

    public static void BnRunningUpdate(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var at = c.A<BatchNormAttrs>();
        int f = c.In[0].Length;
        if (f == 0) return;
        double unbias = at.Count > 1 ? (double)at.Count / (at.Count - 1) : 1.0;
        b.Kernel(RunningK).Launch(b.Blocks(f), CudaBackend.Threads, 0, P(c.In[0]), P(c.In[1]), P(c.Out[0]), P(c.Out[1]), f, at.Momentum, unbias);
    }

    /// <summary>token_mix_forward: y_b[L1,D] = bias (broadcast) + M[L1,L2] f_b[L2,D], one strided-batched GEMM (M shared).</summary>
    public static void TokenMixForward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, l2, d, l1) = MvqOps.MixDims(c.In[0].Shape, c.In[1].Shape);
        ulong y = P(c.Out[0]);
        CudaElementwise.ChannelBroadcast(b, P(c.In[2]), y, n, l1 * d, 1);
        CudaGemm.GemmStrided(b, false, false, l1, d, l2, 1f, P(c.In[1]), l2, 0, P(c.In[0]), d, (long)l2 * d, 1f, y, d, (long)l1 * d, n);
    }

    /// <summary>
    /// token_mix_backward: df_b = M^T dy_b (written); dM += sum_b dy_b f_b^T (per-instance GEMMs into the
    /// workspace, then column sums in instance order); dbias += sum_b dy_b (column sums).
    /// </summary>
    public static void TokenMixBackward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, l2, d, l1) = MvqOps.MixDims(c.In[0].Shape, c.In[1].Shape);
        if (n == 0) return;
        ulong f = P(c.In[0]), m = P(c.In[1]), dy = P(c.In[2]);
        if (d == 0 || l1 == 0) c.Out[0].Zero();
        else CudaGemm.GemmStrided(b, true, false, l2, d, l1, 1f, m, l2, 0, dy, d, (long)l1 * d, 0f, P(c.Out[0]), d, (long)l2 * d, n);
        CudaReduce.ColumnSum(b, dy, n, l1 * d, P(c.Out[2]));
        if ((long)l1 * l2 == 0 || d == 0) return;
        using var ws = b.LockWorkspace((long)n * l1 * l2 * 4, out ulong part);
        CudaGemm.GemmStrided(b, false, true, l1, l2, d, 1f, dy, d, (long)l1 * d, f, d, (long)l2 * d, 0f, part, l2, (long)l1 * l2, n);
        CudaReduce.ColumnSum(b, part, n, l1 * l2, P(c.Out[1]));
    }
}
