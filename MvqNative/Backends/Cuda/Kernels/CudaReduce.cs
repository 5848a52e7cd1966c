// CUDA launcher of sum_squares (native/kernels/reduce.cu): two deterministic passes.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>sum_squares: in [x] (any shape), out [s(1)], s += sum x^2.</summary>
public static class CudaReduce
{
    private static readonly KernelRef PartialK = new("reduce.cu", "sum_squares_partial");
    private static readonly KernelRef FinalizeK = new("reduce.cu", "sum_squares_finalize");

    /// <summary>Most partial sums (blocks of pass 1); pass 2 reduces them in one block.</summary>
    internal const int MaxBlocks = 1024;

    /// <summary>Blocks of pass 1 for n elements: a function of n only, so results are reproducible across devices.</summary>
    internal static int BlocksFor(long n) => (int)Math.Clamp((n + CudaBackend.Threads * 8 - 1) / (CudaBackend.Threads * 8), 1, MaxBlocks);

    /// <summary>OpImpl of sum_squares: s[0] += sum_i x[i]^2.</summary>
    public static void SumSquares(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        if (c.Out[0].Length != 1) throw new ArgumentException($"sum_squares: output must have 1 element, got [{c.Out[0].ShapeString}]");
        int n = c.In[0].Length;
        if (n == 0) return;
        int blocks = BlocksFor(n);
        using var ws = b.LockWorkspace(blocks * 4L, out ulong partial);
        b.Kernel(PartialK).Launch((uint)blocks, CudaBackend.Threads, 0, CudaBackend.Ptr(c.In[0]), n, partial);
        b.Kernel(FinalizeK).Launch(1, CudaBackend.Threads, 0, partial, blocks, CudaBackend.Ptr(c.Out[0]));
    }
}
