// CUDA launchers of the simple MVQ bottleneck ops (native/kernels/mvq.cu): word selection, mask
// application and the frozen batch-norm family. mvq_hidden_stats, mvq_score and token_mix_* have none yet.
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
        if (m.Rank != 2 || c.In[1].Length != m.Dim(0) || c.Out[0].Length != m.Dim(0))
            throw new ArgumentException($"mvq_select_words: masks [{m.ShapeString}], index [{c.In[1].ShapeString}], words [{c.Out[0].ShapeString}] (want [B,J], [B], [B])");
        int n = m.Dim(0);
        if (n == 0) return;
        b.Kernel(SelectK).Launch(b.Blocks(n), CudaBackend.Threads, 0, P(m), P(c.In[1]), P(c.Out[0]), n, m.Dim(1));
    }

    public static void MaskApply(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (_, l, d2) = MvqOps.MaskDims(c.In[0].Shape, c.In[1].Length, "mask_apply");
        long total = c.In[0].Length;
        if (c.Out[0].Length != total) throw new ArgumentException($"mask_apply: y has {c.Out[0].Length} elements, g has {total}");
        if (total == 0) return;
        b.Kernel(MaskK).Launch(b.Blocks(total), CudaBackend.Threads, 0, P(c.In[0]), P(c.In[1]), P(c.Out[0]), total, l, d2);
    }

    public static void BnFrozenForward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int f = c.In[1].Length, n = MvqOps.Rows(c.In[0], f, "batchnorm_frozen_forward");
        long total = (long)n * f;
        if (total == 0) return;
        b.Kernel(BnFwdK).Launch(b.Blocks(total), CudaBackend.Threads, 0, P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.In[3]), P(c.In[4]), P(c.Out[0]), total, f);
    }

    public static void BnFrozenBackward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int f = c.In[1].Length, n = MvqOps.Rows(c.In[0], f, "batchnorm_frozen_backward");
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
}
