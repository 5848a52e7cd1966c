// CUDA launcher of vq_lookup (native/kernels/vq.cu): fused distance + argmin + gather.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>vq_lookup: in [z(N,D), codebook(K,D)], out [idx(N) I32, q(N,D)].</summary>
public static class CudaVq
{
    private static readonly KernelRef LookupK = new("vq.cu", "vq_lookup_forward");

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
        if (z.Rank != 2 || cb.Rank != 2 || z.Dim(1) != cb.Dim(1))
            throw new ArgumentException($"vq_lookup: z [{z.ShapeString}] and codebook [{cb.ShapeString}] must be [N,D] and [K,D]");
        int n = z.Dim(0), d = z.Dim(1), k = cb.Dim(0);
        if (idx.Length != n || q.Length != z.Length) throw new ArgumentException($"vq_lookup: outputs [{idx.ShapeString}], [{q.ShapeString}] must be [{n}] and [{n},{d}]");
        if (n == 0 || d == 0) return;
        if (k == 0) throw new ArgumentException("vq_lookup: empty codebook");
        int chunk = Math.Min(d, MaxChunk);
        uint grid = (uint)((n + Rows - 1) / Rows);
        b.Kernel(LookupK).Launch(grid, Rows, (uint)(TileCodes * chunk * 4),
            CudaBackend.Ptr(z), CudaBackend.Ptr(cb), CudaBackend.Ptr(idx), CudaBackend.Ptr(q), n, k, d, chunk);
    }
}
