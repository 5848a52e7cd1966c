// CUDA launchers of mse_loss, l1_loss, sum_squared_error (and vq_loss) over native/kernels/loss.cu:
// per-block double partials, then one block sums them in a fixed order.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>Losses over equal-length tensors: loss[0] written, dpred written (mse, l1).</summary>
internal static class CudaLoss
{
    private static readonly KernelRef PartialK = new("loss.cu", "loss_partial");
    private static readonly KernelRef FinalizeK = new("loss.cu", "loss_finalize");

    private const int Mse = 0, L1 = 1, Sse = 2;

    public static void MseLoss(in OpCall c)
    {
        var s = c.A<LossAttrs>().Scale;
        int n = c.In[0].Length;
        Run(c, Mse, (float)(s * 2.0 / Math.Max(1, n)), (double)s / Math.Max(1, n), true);
    }

    public static void L1Loss(in OpCall c)
    {
        var s = c.A<LossAttrs>().Scale;
        int n = c.In[0].Length;
        Run(c, L1, (float)((double)s / Math.Max(1, n)), (double)s / Math.Max(1, n), true);
    }

    public static void SumSquaredError(in OpCall c) => Run(c, Sse, 0f, 1.0, false);

    /// <summary>vq_loss: loss[0] = mean((z - q)^2).</summary>
    public static void MeanSquaredError(in OpCall c) => Run(c, Sse, 0f, 1.0 / Math.Max(1, c.In[0].Length), false);

    private static void Run(in OpCall c, int kind, float gscale, double scale, bool gradient)
    {
        var b = (CudaBackend)c.Backend;
        var p = c.In[0]; var t = c.In[1]; var loss = c.Out[0];
        int n = p.Length;
        if (n == 0) { loss.Zero(); return; }
        int blocks = CudaReduce.BlocksFor(n);
        using var ws = b.LockWorkspace(blocks * 8L, out ulong partial);
        ulong pp = CudaBackend.Ptr(p);
        // sum_squared_error has no gradient output: dp is never written for kind 2, pass a valid pointer.
        ulong dp = gradient ? CudaBackend.Ptr(c.Out[1]) : pp;
        b.Kernel(PartialK).Launch((uint)blocks, CudaBackend.Threads, 0, pp, CudaBackend.Ptr(t), dp, n, kind, gscale, partial);
        b.Kernel(FinalizeK).Launch(1, CudaBackend.Threads, 0, partial, blocks, CudaBackend.Ptr(loss), scale);
    }
}
