// CUDA launcher of sum_squares (native/kernels/reduce.cu): two deterministic passes.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>sum_squares: in [x] (any shape), out [s(1)], s += sum x^2; and the per-channel sums that accumulate parameter gradients.</summary>
internal static class CudaReduce
{
    private static readonly KernelRef PartialK = new("reduce.cu", "sum_squares_partial");
    private static readonly KernelRef FinalizeK = new("reduce.cu", "sum_squares_finalize");
    private static readonly KernelRef ChannelSumK = new("reduce.cu", "channel_sum_accumulate");
    private static readonly KernelRef ColumnSumK = new("reduce.cu", "column_sum_accumulate");

    /// <summary>Most partial sums (blocks of pass 1); pass 2 reduces them in one block.</summary>
    internal const int MaxBlocks = 1024;

    /// <summary>Blocks of pass 1 for n elements: a function of n only, so results are reproducible across devices.</summary>
    internal static int BlocksFor(long n) => (int)Math.Clamp((n + CudaBackend.Threads * 8 - 1) / (CudaBackend.Threads * 8), 1, MaxBlocks);

    /// <summary>OpImpl of sum_squares: s[0] += sum_i x[i]^2.</summary>
    public static void SumSquares(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        int n = c.In[0].Length;
        if (n == 0) return;
        int blocks = BlocksFor(n);
        using var ws = b.LockWorkspace(blocks * 4L, out ulong partial);
        b.Kernel(PartialK).Launch((uint)blocks, CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), n, partial);
        b.Kernel(FinalizeK).Launch(1, CudaBackend.Threads, 0, partial, blocks, CudaBackend.Ptr(c.Out[0]));
    }

    /// <summary>out[c] += sum_{b,q} x[(b*channels + c)*inner + q] for x [outer, channels, inner]; one block per channel.</summary>
    internal static void ChannelSum(CudaBackend b, ulong x, int outer, int channels, int inner, ulong output)
    {
        if (channels == 0 || outer == 0 || inner == 0) return;
        b.Kernel(ChannelSumK).Launch((uint)channels, CudaBackend.Threads, 0, x, outer, channels, inner, output);
    }

    /// <summary>out[j] += sum_r x[r*cols + j] for x [rows, cols]; 32 columns per block, fixed order.</summary>
    internal static void ColumnSum(CudaBackend b, ulong x, int rows, int cols, ulong output)
    {
        if (rows == 0 || cols == 0) return;
        b.Kernel(ColumnSumK).Launch((uint)((cols + 31) / 32), 256, 0, x, rows, cols, output);
    }
}
