// CUDA launchers of the VQ ops (native/kernels/vq.cu): vq_lookup (fused distance + argmin +
// gather), vq_backward, vq_ema_update, code_histogram; vq_loss runs on loss.cu (CudaLoss).
using MvqNative.Bindings;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>vq_lookup: in [z(N,D), codebook(K,D)], out [idx(N) I32, q(N,D)]; and the other VQ ops (see VqOps).</summary>
internal static class CudaVq
{
    private static readonly KernelRef LookupK = new("vq.cu", "vq_lookup_forward");
    private static readonly KernelRef DzK = new("vq.cu", "vq_backward_dz");
    private static readonly KernelRef CodebookGradK = new("vq.cu", "vq_backward_codebook");
    private static readonly KernelRef EmaAccumulateK = new("vq.cu", "vq_ema_accumulate");
    private static readonly KernelRef EmaTotalK = new("vq.cu", "vq_ema_total");
    private static readonly KernelRef EmaCodebookK = new("vq.cu", "vq_ema_codebook");
    private static readonly KernelRef HistCountK = new("vq.cu", "code_histogram_count");
    private static readonly KernelRef HistAddK = new("vq.cu", "code_histogram_add");

    /// <summary>Rows of z per block (VQ_ROWS in vq.cu).</summary>
    internal const int Rows = 128;
    /// <summary>Codes per shared-memory tile (VQ_TILE_CODES in vq.cu).</summary>
    internal const int TileCodes = 16;
    /// <summary>Largest slice of D staged at once: 16 codes x 512 dims x 4 bytes = 32 KiB of shared memory.</summary>
    internal const int MaxChunk = 512;

    /// <summary>OpImpl of vq_lookup: idx[n] = argmin_k |z_n - c_k|^2 (ties: smallest k), q[n] = c[idx[n]].</summary>
    public static void Lookup(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var z = c.In[0]; var cb = c.In[1]; var idx = c.Out[0]; var q = c.Out[1];
        int n = z.Dim(0), d = z.Dim(1), k = cb.Dim(0);
        if (n == 0 || d == 0) return;
        int chunk = Math.Min(d, MaxChunk);
        uint grid = (uint)((n + Rows - 1) / Rows);
        b.Kernel(LookupK).Launch(grid, Rows, (uint)(TileCodes * chunk * 4),
            CudaBackend.Ptr(z), CudaBackend.Ptr(cb), CudaBackend.Ptr(idx), CudaBackend.Ptr(q), n, k, d, chunk);
    }

    /// <summary>Threads of the per-code blocks: one per dimension, 32 to 128.</summary>
    private static int CodeThreads(int d) => Math.Clamp((d + 31) / 32 * 32, 32, 128);

    private static (int N, int D) Dims2(Tensor t) => (t.Dim(0), t.Dim(1));

    /// <summary>vq_backward: dz = dq + s beta 2(z-q)/(N D); gradient mode: dcodebook[k] += s 2 sum_{idx_i=k}(q_i - z_i)/(N D).</summary>
    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var a = c.A<VqBackwardAttrs>();
        var (n, d) = Dims2(c.In[0]);
        long nd = (long)n * d;
        double ndd = Math.Max(1.0, nd);
        ulong z = CudaBackend.Ptr(c.In[0]), q = CudaBackend.Ptr(c.In[1]);
        if (nd > 0)
            b.Kernel(DzK).Launch(b.Blocks(nd), CudaBackend.Threads, 0, z, q, CudaBackend.Ptr(c.In[3]), CudaBackend.Ptr(c.Out[0]), nd,
                (float)(a.LossScale * (double)a.Beta * 2.0 / ndd));
        if (!a.CodebookGradient) return;
        var (k, dk) = Dims2(c.Out[1]);
        if (k == 0 || d == 0) return;
        b.Kernel(CodebookGradK).Launch((uint)k, CodeThreads(d), 0, z, q, CudaBackend.Ptr(c.In[2]), CudaBackend.Ptr(c.Out[1]), n, d,
            (float)(a.LossScale * 2.0 / ndd));
    }

    /// <summary>vq_ema_update (in place): cluster sizes and embedding sums decay towards this batch's; codebook = embedSum / smoothed size.</summary>
    public static void EmaUpdate(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var a = c.A<VqEmaAttrs>();
        var (n, d) = Dims2(c.In[0]);
        var (k, dk) = Dims2(c.Out[0]);
        if (k == 0) return;
        ulong cs = CudaBackend.Ptr(c.Out[1]), es = CudaBackend.Ptr(c.Out[2]);
        using var ws = b.LockWorkspace(8, out ulong total);
        b.Kernel(EmaAccumulateK).Launch((uint)k, CodeThreads(d), 0, CudaBackend.Ptr(c.In[0]), CudaBackend.Ptr(c.In[1]), cs, es, n, d, a.Decay);
        b.Kernel(EmaTotalK).Launch(1, CudaBackend.Threads, 0, cs, k, total);
        if ((long)k * d > 0)
            b.Kernel(EmaCodebookK).Launch(b.Blocks((long)k * d), CudaBackend.Threads, 0, cs, es, CudaBackend.Ptr(c.Out[0]), total, k, d, a.Eps);
    }

    /// <summary>vq_loss: loss[0] = mean((z - q)^2).</summary>
    public static void Loss(in OpCall c) => CudaLoss.MeanSquaredError(c);

    /// <summary>code_histogram: counts[k] += #{i : idx_i = k}; integer atomics (exact), indices outside [0, K) skipped.</summary>
    public static void Histogram(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var idx = c.In[0]; var counts = c.Out[0];
        int n = idx.Length, k = counts.Length;
        if (n == 0 || k == 0) return;
        using var ws = b.LockWorkspace(k * 4L, out ulong hist);
        b.MakeCurrent();
        Check.Cu(CudaDriver.cuMemsetD32Async(hist, 0, (nuint)k, b.StreamPtr));
        Interlocked.Increment(ref b.Counters.Memsets);
        b.Kernel(HistCountK).Launch(b.Blocks(n), CudaBackend.Threads, 0, CudaBackend.Ptr(idx), n, k, hist);
        b.Kernel(HistAddK).Launch(b.Blocks(k), CudaBackend.Threads, 0, hist, CudaBackend.Ptr(counts), k);
    }
}
