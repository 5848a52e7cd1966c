// CPU conv2d forward and backward: im2col of a group of images side by side + one CpuGemm per
// group, parallel over fixed batch chunks, with a deterministic chunked reduction of dw and db.
using System.Buffers;
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// conv2d on the CPU. Per image n, with col = im2col(x[n]) of shape [Cin*k*k, Ho*Wo] and
/// w seen as [Cout, Cin*k*k]:
///   forward  y[n]  = w * col + b
///   backward dcol  = w^T * dy[n], dx[n] = col2im(dcol); dw += dy[n] * col^T; db += rowsum(dy[n]).
/// Images are processed in groups laid side by side (col [Cin*k*k, g*Ho*Wo]) so GEMMs are wide, and dw
/// sums a whole group inside one GEMM's K. A 1-output-channel conv uses row axpys / dots instead of GEMM.
/// </summary>
internal static unsafe class CpuConv
{
    /// <summary>Target GEMM width: a group of images is laid side by side so that N = group * Ho*Wo reaches about this.</summary>
    private const int TargetCols = 1024;

    /// <summary>
    /// dx of stride-1 same convolutions as a forward convolution of dy (see Backward); MVQ_CONV_DX=col2im switches back
    /// to W^T dy + col2im for every convolution (to compare speed, or the old summation order).
    /// </summary>
    internal static bool DirectDx { get; set; } = Environment.GetEnvironmentVariable("MVQ_CONV_DX") != "col2im";

    /// <summary>Fixed batch chunks (one per thread) and the group size inside a chunk; all sums depend only on these.</summary>
    private static (int Chunks, int Per, int Group) Plan(in ConvShape s)
    {
        int chunks = Math.Min(s.B, Math.Max(1, CpuParallel.Threads));
        int per = (s.B + chunks - 1) / chunks;
        chunks = (s.B + per - 1) / per;
        int group = Math.Clamp((TargetCols + s.Pixels - 1) / Math.Max(1, s.Pixels), 1, per);
        return (chunks, per, group);
    }

    public static void Forward(in OpCall c)
    {
        var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
        if (s.B == 0 || s.Pixels == 0 || s.Cout == 0) return;
        var x = Arr(c.In[0]); int xo = (int)c.In[0].Offset;
        var w = Arr(c.In[1]); int wo = (int)c.In[1].Offset;
        var b = Arr(c.In[2]); int bo = (int)c.In[2].Offset;
        var y = Arr(c.Out[0]); int yo = (int)c.Out[0].Offset;
        int rows = s.Rows, pix = s.Pixels, cout = s.Cout;
        int inImage = s.Cin * s.H * s.W, outImage = cout * pix;
        var (chunks, per, group) = Plan(s);
        // One chunk: let the GEMM use every thread; several: each chunk's GEMMs stay on its thread.
        int gemmThreads = chunks == 1 ? CpuParallel.Threads : 1;

        CpuParallel.For(chunks, 1, (c0, c1) =>
        {
            int cols = group * pix;
            var colBuf = ArrayPool<float>.Shared.Rent(Math.Max(1, rows * cols));
            var outBuf = ArrayPool<float>.Shared.Rent(cout == 1 ? 1 : cout * cols);
            try
            {
                fixed (float* px = x, pw = w, pb = b, py = y, pcol = colBuf, pout = outBuf)
                {
                    for (int ci = c0; ci < c1; ci++)
                    {
                        int nEnd = Math.Min(s.B, (ci + 1) * per);
                        for (int n0 = ci * per; n0 < nEnd; n0 += group)
                        {
                            int g = Math.Min(group, nEnd - n0), n = g * pix;
                            for (int i = 0; i < g; i++) Im2Col(s, px + xo + (long)(n0 + i) * inImage, pcol + i * pix, n);
                            // [Cout, g*pix] output: y itself when Cout == 1 (images are then contiguous).
                            float* o = cout == 1 ? py + yo + (long)n0 * outImage : pout;
                            // Bias first, then out += w * col (beta = 1), as a per-image GEMM would sum.
                            for (int r = 0; r < cout; r++) new Span<float>(o + (long)r * n, n).Fill(pb[bo + r]);
                            if (rows > 0)
                            {
                                if (cout == 1) RowCombine(pw + wo, pcol, rows, n, o);
                                else CpuGemm.SgemmThreads(gemmThreads, false, false, cout, n, rows, 1f, pw + wo, rows, pcol, n, 1f, o, n);
                            }
                            if (cout != 1)
                                for (int i = 0; i < g; i++)
                                    for (int r = 0; r < cout; r++)
                                        new ReadOnlySpan<float>(o + (long)r * n + i * pix, pix)
                                            .CopyTo(new Span<float>(py + yo + (long)(n0 + i) * outImage + (long)r * pix, pix));
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(colBuf);
                ArrayPool<float>.Shared.Return(outBuf);
            }
        });
    }

    public static void Backward(in OpCall c)
    {
        var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
        var x = Arr(c.In[0]); int xo = (int)c.In[0].Offset;
        var w = Arr(c.In[1]); int wo = (int)c.In[1].Offset;
        var dy = Arr(c.In[2]); int dyo = (int)c.In[2].Offset;
        var dx = Arr(c.Out[0]); int dxo = (int)c.Out[0].Offset;
        var dw = Arr(c.Out[1]); int dwo = (int)c.Out[1].Offset;
        var db = Arr(c.Out[2]); int dbo = (int)c.Out[2].Offset;
        int rows = s.Rows, pix = s.Pixels, cout = s.Cout;
        int inImage = s.Cin * s.H * s.W, outImage = cout * pix;
        int wLen = cout * rows;
        if (s.B == 0) return;
        if (cout == 0) { c.Out[0].Zero(); return; }

        // Fixed chunks of consecutive images, each with its own dw/db partial, and fixed groups of
        // images inside a chunk (dw sums over a group inside one GEMM's K); which thread runs a chunk
        // does not change any sum, so the result depends only on the thread count.
        var (chunks, per, group) = Plan(s);
        int gemmThreads = chunks == 1 ? CpuParallel.Threads : 1;
        int partLen = wLen + cout;
        // A stride-1 "same" convolution (k > 1, 2P = k - 1) gets dx as a forward convolution of dy with the
        // flipped kernel: dx[n] = wt * im2col'(dy[n]), wt[ci, (co, u, v)] = w[co, ci, k-1-u, k-1-v], im2col' with
        // padding k-1-P. That is one GEMM with K = Cout*k*k and no col2im, where W^T dy has K = Cout and
        // writes a Cin*k*k x pixels matrix that col2im then reads back: the same flops, far less memory
        // traffic. It sums dx over (co, u, v) in the GEMM's order instead of over co then (u, v).
        bool direct = DirectDx && s.S == 1 && s.K > 1 && 2 * s.P == s.K - 1 && rows > 0 && pix > 0;
        var ts = direct ? new ConvShape(1, cout, s.Ho, s.Wo, s.Cin, s.K, 1, s.K - 1 - s.P, s.H, s.W) : default;
        int tRows = direct ? ts.Rows : 0;
        var wt = direct ? ArrayPool<float>.Shared.Rent(s.Cin * tRows) : null;
        if (direct) FlipTranspose(w, wo, cout, s.Cin, s.K, wt!);
        var parts = ArrayPool<float>.Shared.Rent(chunks * partLen);
        try
        {
            CpuParallel.For(chunks, 1, (c0, c1) =>
            {
                int cols = group * pix;
                // col [rows, cols], then dcol [rows, cols] (col2im path) or dy's im2col [tRows, cols] + dx of the group [Cin, cols].
                long scratch = direct ? (long)(rows + tRows + s.Cin) * cols : 2L * rows * cols;
                var colBuf = ArrayPool<float>.Shared.Rent((int)Math.Max(1, scratch));
                var dyBuf = ArrayPool<float>.Shared.Rent(cout == 1 ? 1 : cout * cols);
                try
                {
                    fixed (float* px = x, pw = w, pdy = dy, pdx = dx, pparts = parts, pscr = colBuf, pdyg = dyBuf, pwt = wt)
                    {
                        for (int ci = c0; ci < c1; ci++)
                        {
                            float* pdw = pparts + (long)ci * partLen;
                            float* pdb = pdw + wLen;
                            new Span<float>(pdw, partLen).Clear();
                            int nEnd = Math.Min(s.B, (ci + 1) * per);
                            for (int n0 = ci * per; n0 < nEnd; n0 += group)
                            {
                                int g = Math.Min(group, nEnd - n0), n = g * pix;
                                float* col = pscr, dcol = pscr + (long)rows * n;
                                // dy of the group as [Cout, g*pix] (dy itself when Cout == 1).
                                float* dyg = pdyg;
                                if (cout == 1) dyg = pdy + dyo + (long)n0 * outImage;
                                else
                                    for (int i = 0; i < g; i++)
                                        for (int r = 0; r < cout; r++)
                                            new ReadOnlySpan<float>(pdy + dyo + (long)(n0 + i) * outImage + (long)r * pix, pix)
                                                .CopyTo(new Span<float>(dyg + (long)r * n + i * pix, pix));
                                for (int i = 0; i < g; i++) Im2Col(s, px + xo + (long)(n0 + i) * inImage, col + i * pix, n);
                                if (direct)
                                {
                                    float* tcol = dcol, dxg = dcol + (long)tRows * n;
                                    for (int i = 0; i < g; i++) Im2Col(ts, pdy + dyo + (long)(n0 + i) * outImage, tcol + i * pix, n);
                                    CpuGemm.SgemmThreads(gemmThreads, false, false, s.Cin, n, tRows, 1f, pwt, tRows, tcol, n, 0f, dxg, n);
                                    for (int i = 0; i < g; i++)
                                        for (int r = 0; r < s.Cin; r++)
                                            new ReadOnlySpan<float>(dxg + (long)r * n + i * pix, pix)
                                                .CopyTo(new Span<float>(pdx + dxo + (long)(n0 + i) * inImage + (long)r * pix, pix));
                                    if (cout == 1)
                                    {
                                        var dyR = new ReadOnlySpan<float>(dyg, n);
                                        for (int r = 0; r < rows; r++)
                                            pdw[r] += System.Numerics.Tensors.TensorPrimitives.Dot(dyR, new ReadOnlySpan<float>(col + (long)r * n, n));
                                    }
                                    else CpuGemm.SgemmThreads(gemmThreads, false, true, cout, rows, n, 1f, dyg, n, col, n, 1f, pdw, rows);
                                }
                                else
                                {
                                    if (rows > 0 && pix > 0)
                                    {
                                        if (cout == 1)
                                        {
                                            // Outer product and row dots: a 1-row GEMM would waste most of each micro tile.
                                            for (int r = 0; r < rows; r++)
                                            {
                                                var colR = new ReadOnlySpan<float>(col + (long)r * n, n);
                                                var dyR = new ReadOnlySpan<float>(dyg, n);
                                                System.Numerics.Tensors.TensorPrimitives.Multiply(dyR, pw[wo + r], new Span<float>(dcol + (long)r * n, n));
                                                pdw[r] += System.Numerics.Tensors.TensorPrimitives.Dot(dyR, colR);
                                            }
                                        }
                                        else
                                        {
                                            CpuGemm.SgemmThreads(gemmThreads, true, false, rows, n, cout, 1f, pw + wo, rows, dyg, n, 0f, dcol, n);
                                            CpuGemm.SgemmThreads(gemmThreads, false, true, cout, rows, n, 1f, dyg, n, col, n, 1f, pdw, rows);
                                        }
                                    }
                                    else new Span<float>(dcol, rows * n).Clear();
                                    for (int i = 0; i < g; i++) Col2Im(s, dcol + i * pix, n, pdx + dxo + (long)(n0 + i) * inImage);
                                }
                                for (int i = 0; i < g; i++)
                                {
                                    float* dyn = pdy + dyo + (long)(n0 + i) * outImage;
                                    for (int o = 0; o < cout; o++)
                                    {
                                        float* r = dyn + (long)o * pix;
                                        float acc = 0;
                                        for (int j = 0; j < pix; j++) acc += r[j];
                                        pdb[o] += acc;
                                    }
                                }
                            }
                        }
                    }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(colBuf);
                    ArrayPool<float>.Shared.Return(dyBuf);
                }
            });

            // Reduce partials in chunk order onto the existing gradients (+=).
            CpuParallel.For(partLen, 4096, (i0, i1) =>
            {
                for (int i = i0; i < i1; i++)
                {
                    float acc = 0;
                    for (int ci = 0; ci < chunks; ci++) acc += parts[ci * partLen + i];
                    if (i < wLen) dw[dwo + i] += acc;
                    else db[dbo + i - wLen] += acc;
                }
            });
        }
        finally
        {
            ArrayPool<float>.Shared.Return(parts);
            if (wt is not null) ArrayPool<float>.Shared.Return(wt);
        }
    }

    /// <summary>wt[ci, (co*k + u)*k + v] = w[co, ci, k-1-u, k-1-v]: the kernel of the transposed convolution as a forward one.</summary>
    private static void FlipTranspose(float[] w, int wo, int cout, int cin, int k, float[] wt)
    {
        int kk = k * k, tRows = cout * kk;
        for (int co = 0; co < cout; co++)
            for (int ci = 0; ci < cin; ci++)
            {
                int src = wo + (co * cin + ci) * kk, dst = ci * tRows + co * kk;
                for (int t = 0; t < kk; t++) wt[dst + t] = w[src + kk - 1 - t];
            }
    }

    /// <summary>out[0, :] += sum over r, in order, of w[r] * col[r, :] (a 1-row GEMM as row axpys).</summary>
    private static void RowCombine(float* w, float* col, int rows, int n, float* o)
    {
        var dst = new Span<float>(o, n);
        for (int r = 0; r < rows; r++)
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(col + (long)r * n, n), w[r], dst, dst);
    }

    /// <summary>col[(c*k+u)*k+v, i*Wo+j] (row stride ld) = x[c, i*S-P+u, j*S-P+v], zero outside the image.</summary>
    internal static void Im2Col(in ConvShape s, float* x, float* col, int ld)
    {
        int k = s.K;
        for (int c = 0; c < s.Cin; c++)
        {
            float* xc = x + (long)c * s.H * s.W;
            for (int u = 0; u < k; u++)
                for (int v = 0; v < k; v++)
                {
                    float* row = col + (long)((c * k + u) * k + v) * ld;
                    var (j0, j1) = ValidRange(v, s.P, s.S, s.W, s.Wo);
                    for (int i = 0; i < s.Ho; i++)
                    {
                        float* dst = row + i * s.Wo;
                        int ih = i * s.S - s.P + u;
                        if (ih < 0 || ih >= s.H) { new Span<float>(dst, s.Wo).Clear(); continue; }
                        float* src = xc + ih * s.W - s.P + v;
                        for (int j = 0; j < j0; j++) dst[j] = 0;
                        if (s.S == 1) new ReadOnlySpan<float>(src + j0, j1 - j0).CopyTo(new Span<float>(dst + j0, j1 - j0));
                        else for (int j = j0; j < j1; j++) dst[j] = src[j * s.S];
                        for (int j = j1; j < s.Wo; j++) dst[j] = 0;
                    }
                }
        }
    }

    /// <summary>dx = 0, then dx[c, i*S-P+u, j*S-P+v] += dcol[(c*k+u)*k+v, i*Wo+j] (row stride ld) inside the image.</summary>
    internal static void Col2Im(in ConvShape s, float* dcol, int ld, float* dx)
    {
        int k = s.K;
        new Span<float>(dx, s.Cin * s.H * s.W).Clear();
        for (int c = 0; c < s.Cin; c++)
        {
            float* dxc = dx + (long)c * s.H * s.W;
            for (int u = 0; u < k; u++)
                for (int v = 0; v < k; v++)
                {
                    float* row = dcol + (long)((c * k + u) * k + v) * ld;
                    var (j0, j1) = ValidRange(v, s.P, s.S, s.W, s.Wo);
                    int len = j1 - j0;
                    for (int i = 0; i < s.Ho; i++)
                    {
                        int ih = i * s.S - s.P + u;
                        if (ih < 0 || ih >= s.H) continue;
                        float* src = row + i * s.Wo;
                        float* dst = dxc + ih * s.W - s.P + v;
                        if (s.S == 1 && len >= 8)
                        {
                            var d = new Span<float>(dst + j0, len);
                            System.Numerics.Tensors.TensorPrimitives.Add(d, new ReadOnlySpan<float>(src + j0, len), d);
                        }
                        else for (int j = j0; j < j1; j++) dst[j * s.S] += src[j];
                    }
                }
        }
    }

    /// <summary>Output columns j whose input column j*S-P+v lies in [0, W).</summary>
    private static (int J0, int J1) ValidRange(int v, int p, int stride, int w, int wo)
    {
        // j*S >= P - v  and  j*S <= W - 1 + P - v.
        int lo = p - v, hi = w - 1 + p - v;
        int j0 = lo <= 0 ? 0 : (lo + stride - 1) / stride;
        int j1 = hi < 0 ? 0 : hi / stride + 1;
        j1 = Math.Min(j1, wo);
        return (Math.Min(j0, j1), j1);
    }

    private static float[] Arr(Tensors.Tensor t) => ((CpuBuffer)t.Buffer).Data;
}
