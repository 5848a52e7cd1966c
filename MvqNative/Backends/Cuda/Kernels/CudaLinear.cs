// CUDA launchers of linear_forward / linear_backward: cuBLAS SGEMMs (row-major through
// CudaGemm), the bias broadcast and a column-sum kernel; no kernels of their own.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>
/// linear_forward: [x(N,in), w(out,in), b(out)] -> [y(N,out)], y = b (broadcast), then y += x w^T (one GEMM).
/// linear_backward: [x, w, dy(N,out)] -> [dx = dy w (written), dw += dy^T x (one GEMM, beta 1), db += column sums of dy].
/// Each GEMM is one cuBLAS call over the whole batch, so dw's sum over rows happens inside it in a
/// fixed order (cuBLAS is deterministic for a given device, shapes and stream).
/// </summary>
internal static class CudaLinear
{
    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, fin, fout) = LinearOps.Sizes3(c.In[0].Shape, c.In[1].Shape);
        ulong y = CudaBackend.Ptr(c.Out[0]);
        CudaElementwise.ChannelBroadcast(b, CudaBackend.Ptr(c.In[2]), y, n, fout, 1);
        CudaGemm.Gemm(b, false, true, n, fout, fin, 1f, CudaBackend.Ptr(c.In[0]), fin, CudaBackend.Ptr(c.In[1]), fin, 1f, y, fout);
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var (n, fin, fout) = LinearOps.Sizes3(c.In[0].Shape, c.In[1].Shape);
        ulong x = CudaBackend.Ptr(c.In[0]), w = CudaBackend.Ptr(c.In[1]), dy = CudaBackend.Ptr(c.In[2]);
        if (fout == 0) { c.Out[0].Zero(); return; }
        CudaGemm.Gemm(b, false, false, n, fin, fout, 1f, dy, fout, w, fin, 0f, CudaBackend.Ptr(c.Out[0]), fin);
        CudaGemm.Gemm(b, true, false, fout, fin, n, 1f, dy, fout, x, fin, 1f, CudaBackend.Ptr(c.Out[1]), fin);
        CudaReduce.ColumnSum(b, dy, n, fout, CudaBackend.Ptr(c.Out[2]));
    }
}
