// CPU conv2d forward and backward: im2col + CpuGemm per image, parallel over the batch,
// with a deterministic chunked reduction of the weight and bias gradients.
using System.Buffers;
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// conv2d on the CPU. Per image n, with col = im2col(x[n]) of shape [Cin*k*k, Ho*Wo] and
/// w seen as [Cout, Cin*k*k]:
///   forward  y[n]  = w * col + b
///   backward dcol  = w^T * dy[n], dx[n] = col2im(dcol); dw += dy[n] * col^T; db += rowsum(dy[n]).
/// A pointwise conv (1x1, stride 1, no padding) uses x[n] as col directly.
/// </summary>
internal static unsafe class CpuConv
{
    public static void Forward(in OpCall c)
    {
        var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
        s.CheckBias(c.In[2].Shape, "b");
        s.CheckOut(c.Out[0].Shape, "y");
        if (s.B == 0 || s.Pixels == 0 || s.Cout == 0) return;
        var x = Arr(c.In[0]); int xo = (int)c.In[0].Offset;
        var w = Arr(c.In[1]); int wo = (int)c.In[1].Offset;
        var b = Arr(c.In[2]); int bo = (int)c.In[2].Offset;
        var y = Arr(c.Out[0]); int yo = (int)c.Out[0].Offset;
        int rows = s.Rows, pix = s.Pixels;
        int inImage = s.Cin * s.H * s.W, outImage = s.Cout * pix;

        CpuParallel.For(s.B, 1, (n0, n1) =>
        {
            float[]? scratch = s.Pointwise ? null : ArrayPool<float>.Shared.Rent(rows * pix);
            try
            {
                fixed (float* px = x, pw = w, pb = b, py = y)
                fixed (float* pcol = scratch)
                {
                    for (int n = n0; n < n1; n++)
                    {
                        float* xn = px + xo + (long)n * inImage;
                        float* yn = py + yo + (long)n * outImage;
                        float* col = xn;
                        if (!s.Pointwise) { Im2Col(s, xn, pcol); col = pcol; }
                        // Bias first, then y += w * col (beta = 1).
                        for (int o = 0; o < s.Cout; o++) new Span<float>(yn + (long)o * pix, pix).Fill(pb[bo + o]);
                        if (rows > 0) CpuGemm.Sgemm(false, false, s.Cout, pix, rows, 1f, pw + wo, rows, col, pix, 1f, yn, pix);
                    }
                }
            }
            finally
            {
                if (scratch != null) ArrayPool<float>.Shared.Return(scratch);
            }
        });
    }

    public static void Backward(in OpCall c)
    {
        var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
        s.CheckOut(c.In[2].Shape, "dy");
        if (!c.Out[0].SameShape(c.In[0])) throw new ArgumentException($"conv2d_backward: dx must be [{c.In[0].ShapeString}], got [{c.Out[0].ShapeString}]");
        if (!c.Out[1].SameShape(c.In[1])) throw new ArgumentException($"conv2d_backward: dw must be [{c.In[1].ShapeString}], got [{c.Out[1].ShapeString}]");
        s.CheckBias(c.Out[2].Shape, "db");
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

        // Fixed chunks of consecutive images, each with its own dw/db partial; which thread
        // runs a chunk does not change any sum, so the result depends only on the chunk count.
        int chunks = Math.Min(s.B, Math.Max(1, CpuParallel.Threads));
        int per = (s.B + chunks - 1) / chunks;
        chunks = (s.B + per - 1) / per;
        int partLen = wLen + cout;
        var parts = ArrayPool<float>.Shared.Rent(chunks * partLen);
        try
        {
            CpuParallel.For(chunks, 1, (c0, c1) =>
            {
                int colLen = s.Pointwise ? 0 : rows * pix;
                var scratch = ArrayPool<float>.Shared.Rent(Math.Max(1, 2 * colLen));
                try
                {
                    fixed (float* px = x, pw = w, pdy = dy, pdx = dx, pparts = parts, pscr = scratch)
                    {
                        for (int ci = c0; ci < c1; ci++)
                        {
                            float* pdw = pparts + (long)ci * partLen;
                            float* pdb = pdw + wLen;
                            new Span<float>(pdw, partLen).Clear();
                            int n1 = Math.Min(s.B, (ci + 1) * per);
                            for (int n = ci * per; n < n1; n++)
                            {
                                float* xn = px + xo + (long)n * inImage;
                                float* dyn = pdy + dyo + (long)n * outImage;
                                float* dxn = pdx + dxo + (long)n * inImage;
                                if (s.Pointwise)
                                {
                                    // dx[n] = w^T dy[n] straight into dx; x[n] is the col matrix.
                                    if (rows > 0) CpuGemm.Sgemm(true, false, rows, pix, cout, 1f, pw + wo, rows, dyn, pix, 0f, dxn, pix);
                                    if (rows > 0 && pix > 0) CpuGemm.Sgemm(false, true, cout, rows, pix, 1f, dyn, pix, xn, pix, 1f, pdw, rows);
                                }
                                else
                                {
                                    float* col = pscr, dcol = pscr + colLen;
                                    Im2Col(s, xn, col);
                                    if (rows > 0 && pix > 0)
                                    {
                                        CpuGemm.Sgemm(true, false, rows, pix, cout, 1f, pw + wo, rows, dyn, pix, 0f, dcol, pix);
                                        CpuGemm.Sgemm(false, true, cout, rows, pix, 1f, dyn, pix, col, pix, 1f, pdw, rows);
                                    }
                                    Col2Im(s, dcol, dxn);
                                }
                                for (int o = 0; o < cout; o++)
                                {
                                    float* r = dyn + (long)o * pix;
                                    float acc = 0;
                                    for (int i = 0; i < pix; i++) acc += r[i];
                                    pdb[o] += acc;
                                }
                            }
                        }
                    }
                }
                finally
                {
                    ArrayPool<float>.Shared.Return(scratch);
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
        }
    }

    /// <summary>col[(c*k+u)*k+v, i*Wo+j] = x[c, i*S-P+u, j*S-P+v], zero outside the image.</summary>
    internal static void Im2Col(in ConvShape s, float* x, float* col)
    {
        int k = s.K, pix = s.Pixels;
        for (int c = 0; c < s.Cin; c++)
        {
            float* xc = x + (long)c * s.H * s.W;
            for (int u = 0; u < k; u++)
                for (int v = 0; v < k; v++)
                {
                    float* row = col + (long)((c * k + u) * k + v) * pix;
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

    /// <summary>dx = 0, then dx[c, i*S-P+u, j*S-P+v] += dcol[(c*k+u)*k+v, i*Wo+j] inside the image.</summary>
    internal static void Col2Im(in ConvShape s, float* dcol, float* dx)
    {
        int k = s.K, pix = s.Pixels;
        new Span<float>(dx, s.Cin * s.H * s.W).Clear();
        for (int c = 0; c < s.Cin; c++)
        {
            float* dxc = dx + (long)c * s.H * s.W;
            for (int u = 0; u < k; u++)
                for (int v = 0; v < k; v++)
                {
                    float* row = dcol + (long)((c * k + u) * k + v) * pix;
                    var (j0, j1) = ValidRange(v, s.P, s.S, s.W, s.Wo);
                    for (int i = 0; i < s.Ho; i++)
                    {
                        int ih = i * s.S - s.P + u;
                        if (ih < 0 || ih >= s.H) continue;
                        float* src = row + i * s.Wo;
                        float* dst = dxc + ih * s.W - s.P + v;
                        for (int j = j0; j < j1; j++) dst[j * s.S] += src[j];
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
