// CUDA launchers of conv2d_forward / conv2d_backward: im2col (native/kernels/conv.cu) and
// strided-batched cuBLAS SGEMMs over groups of images, col2im for dx, deterministic sums for dw/db.
using MvqNative.Ops;

namespace MvqNative.Backends.Cuda.Kernels;

/// <summary>
/// conv2d on CUDA (shapes and math: <see cref="ConvOps"/>). Images are processed in groups of G
/// (the im2col scratch of a group, G*Rows*Pixels floats, stays under <see cref="MaxScratchFloats"/>;
/// G depends only on the shapes). Per group:
/// forward: y = b (broadcast once for the batch); col = im2col(x_g); y_n += w[Cout,Rows] col_n (one strided-batched GEMM).
/// backward: col = im2col(x_g); dwPart_n = dy_n col_n^T (strided-batched GEMM into scratch),
/// dw += sum_n dwPart_n (column_sum_accumulate, image order; a group of one GEMMs into dw with beta 1);
/// dcol_n = w^T dy_n into the same scratch, dx_g = col2im(dcol) (written); db += sums of dy per channel.
/// 1x1 stride-1 unpadded convs skip im2col/col2im (x and dx already are the column matrices).
/// </summary>
internal static class CudaConv
{
    private static readonly KernelRef Im2colK = new("conv.cu", "conv2d_im2col");
    private static readonly KernelRef Col2imK = new("conv.cu", "conv2d_col2im");

    /// <summary>Scratch budget per group of images (32 MiB of floats).</summary>
    internal const long MaxScratchFloats = 8L << 20;

    /// <summary>Images per group: as many as fit <see cref="MaxScratchFloats"/> for both scratch matrices, at least 1.</summary>
    internal static int GroupSize(ConvShape s, bool backward)
    {
        long perImage = (long)s.Rows * s.Pixels + (backward ? (long)s.Cout * s.Rows : 0);
        return (int)Math.Clamp(MaxScratchFloats / Math.Max(1, perImage), 1, Math.Max(1, s.B));
    }

    public static void Forward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
        if (s.B == 0) return;
        ulong x = CudaBackend.Ptr(c.In[0]), w = CudaBackend.Ptr(c.In[1]), y = CudaBackend.Ptr(c.Out[0]);
        int rows = s.Rows, pix = s.Pixels;
        long xImage = (long)s.Cin * s.H * s.W, yImage = (long)s.Cout * pix, colImage = (long)rows * pix;
        CudaElementwise.ChannelBroadcast(b, CudaBackend.Ptr(c.In[2]), y, s.B, s.Cout, pix);
        int g = GroupSize(s, false);
        using var ws = b.LockWorkspace(s.Pointwise ? 4 : g * colImage * 4, out ulong col);
        for (int n0 = 0; n0 < s.B; n0 += g)
        {
            int gn = Math.Min(g, s.B - n0);
            ulong xn = x + (ulong)(n0 * xImage * 4), cn = xn;
            if (!s.Pointwise) { Im2col(b, xn, col, gn, s); cn = col; }
            CudaGemm.GemmStrided(b, false, false, s.Cout, pix, rows, 1f, w, rows, 0, cn, pix, colImage, 1f,
                y + (ulong)(n0 * yImage * 4), pix, yImage, gn);
        }
    }

    public static void Backward(in OpCall c)
    {
        var b = (CudaBackend)c.Backend;
        var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
        if (s.B == 0) return;
        ulong x = CudaBackend.Ptr(c.In[0]), w = CudaBackend.Ptr(c.In[1]), dy = CudaBackend.Ptr(c.In[2]);
        ulong dx = CudaBackend.Ptr(c.Out[0]), dw = CudaBackend.Ptr(c.Out[1]);
        int rows = s.Rows, pix = s.Pixels;
        long xImage = (long)s.Cin * s.H * s.W, yImage = (long)s.Cout * pix, colImage = (long)rows * pix, wSize = (long)s.Cout * rows;
        int g = GroupSize(s, true);
        long colFloats = s.Pointwise ? 0 : g * colImage, partFloats = g > 1 ? g * wSize : 0;
        using var ws = b.LockWorkspace(Math.Max(1, colFloats + partFloats) * 4, out ulong scratch);
        ulong col = scratch, part = scratch + (ulong)(colFloats * 4);
        for (int n0 = 0; n0 < s.B; n0 += g)
        {
            int gn = Math.Min(g, s.B - n0);
            ulong xn = x + (ulong)(n0 * xImage * 4), dyn = dy + (ulong)(n0 * yImage * 4), dxn = dx + (ulong)(n0 * xImage * 4);
            ulong cn = xn;
            if (!s.Pointwise) { Im2col(b, xn, col, gn, s); cn = col; }
            if (gn == 1) CudaGemm.Gemm(b, false, true, s.Cout, rows, pix, 1f, dyn, pix, cn, pix, 1f, dw, rows);
            else
            {
                CudaGemm.GemmStrided(b, false, true, s.Cout, rows, pix, 1f, dyn, pix, yImage, cn, pix, colImage, 0f, part, rows, wSize, gn);
                CudaReduce.ColumnSum(b, part, gn, (int)wSize, dw);
            }
            // dcol overwrites the im2col scratch: the dw GEMM before it on the stream has read it.
            ulong dcol = s.Pointwise ? dxn : col;
            CudaGemm.GemmStrided(b, true, false, rows, pix, s.Cout, 1f, w, rows, 0, dyn, pix, yImage, 0f, dcol, pix, colImage, gn);
            if (!s.Pointwise) Col2im(b, col, dxn, gn, s);
        }
        CudaReduce.ChannelSum(b, dy, s.B, s.Cout, pix, CudaBackend.Ptr(c.Out[2]));
    }

    private static void Im2col(CudaBackend b, ulong x, ulong col, int images, ConvShape s) =>
        b.Kernel(Im2colK).Launch(b.Blocks((long)images * s.Rows * s.Pixels), CudaBackend.Threads, 0, x, col, images, s.Cin, s.H, s.W, s.K, s.S, s.P);

    private static void Col2im(CudaBackend b, ulong col, ulong dx, int images, ConvShape s) =>
        b.Kernel(Col2imK).Launch(b.Blocks((long)images * s.Cin * s.H * s.W), CudaBackend.Threads, 0, col, dx, images, s.Cin, s.H, s.W, s.K, s.S, s.P);
}
