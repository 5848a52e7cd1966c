// CPU group normalisation: forward (statistics + affine) and backward, parallel over (sample, group).
using System.Buffers;
using System.Numerics;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Group norm on the CPU. A (sample, group) block is contiguous in NCHW-like layouts:
/// Cg = C/G channels of S spatial positions each. Statistics in double (two passes);
/// parameter gradients go through per-(sample, channel) partials summed over samples in a
/// fixed order, so results are bit-identical for any thread count.
/// </summary>
internal static class CpuGroupNorm
{
    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    public static void Forward(in OpCall c)
    {
        var at = c.A<GroupNormAttrs>();
        var (B, C, S) = GroupNormOps.Dims(c.In[0].Shape, at.Groups);
        int G = at.Groups, cg = C / G, n = cg * S;

        var x = D(c.In[0]); int xo = (int)c.In[0].Offset;
        var gamma = D(c.In[1]); int go = (int)c.In[1].Offset;
        var beta = D(c.In[2]); int bo = (int)c.In[2].Offset;
        var y = D(c.Out[0]); int yo = (int)c.Out[0].Offset;
        var mean = D(c.Out[1]); int mo = (int)c.Out[1].Offset;
        var rstd = D(c.Out[2]); int ro = (int)c.Out[2].Offset;
        double eps = at.Eps;

        CpuParallel.For(B * G, Math.Max(1, 16384 / Math.Max(1, n)), (s, e) =>
        {
            for (int bg = s; bg < e; bg++)
            {
                var xs = x.AsSpan(xo + bg * n, n);
                double m = n == 0 ? 0 : CpuDoubleSums.Sum(xs) / n;
                double v = n == 0 ? 0 : CpuDoubleSums.SumSqDev(xs, m) / n;
                double r = 1 / Math.Sqrt(v + eps);
                mean[mo + bg] = (float)m;
                rstd[ro + bg] = (float)r;
                int g = bg % G;
                float mf = (float)m;
                for (int ci = 0; ci < cg; ci++)
                {
                    int ch = g * cg + ci;
                    double scale = r * gamma[go + ch];
                    // (x - mf) in float is exact for x near mf; the shift carries the part of the
                    // mean that float rounding dropped, so a large mean costs no precision.
                    Affine(xs.Slice(ci * S, S), mf, (float)scale, (float)(beta[bo + ch] - (m - mf) * scale), y.AsSpan(yo + bg * n + ci * S, S));
                }
            }
        });
    }

    /// <summary>y = (x - m) * scale + shift.</summary>
    private static void Affine(ReadOnlySpan<float> x, float m, float scale, float shift, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && x.Length >= w)
        {
            var vm = new Vector<float>(m); var vs = new Vector<float>(scale); var vb = new Vector<float>(shift);
            for (; i <= x.Length - w; i += w) ((new Vector<float>(x[i..]) - vm) * vs + vb).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] = (x[i] - m) * scale + shift;
    }

    public static void Backward(in OpCall c)
    {
        var at = c.A<GroupNormAttrs>();
        var (B, C, S) = GroupNormOps.Dims(c.In[0].Shape, at.Groups);
        int G = at.Groups, cg = C / G, n = cg * S;

        var x = D(c.In[0]); int xo = (int)c.In[0].Offset;
        var gamma = D(c.In[1]); int go = (int)c.In[1].Offset;
        var mean = D(c.In[2]); int mo = (int)c.In[2].Offset;
        var rstd = D(c.In[3]); int ro = (int)c.In[3].Offset;
        var dy = D(c.In[4]); int dyo = (int)c.In[4].Offset;
        var dx = D(c.Out[0]); int dxo = (int)c.Out[0].Offset;
        var dgamma = D(c.Out[1]); int dgo = (int)c.Out[1].Offset;
        var dbeta = D(c.Out[2]); int dbo = (int)c.Out[2].Offset;

        // Per (sample, channel) partial sums: pb = sum dy, pg = sum dy * xhat.
        int bc = B * C;
        var pb = ArrayPool<double>.Shared.Rent(Math.Max(1, bc));
        var pg = ArrayPool<double>.Shared.Rent(Math.Max(1, bc));
        try
        {
            CpuParallel.For(B * G, Math.Max(1, 8192 / Math.Max(1, n)), (s, e) =>
            {
                for (int bg = s; bg < e; bg++)
                {
                    int b = bg / G, g = bg % G;
                    float m = mean[mo + bg], r = rstd[ro + bg];
                    double sumGdy = 0, sumGdyXhat = 0;
                    for (int ci = 0; ci < cg; ci++)
                    {
                        int ch = g * cg + ci, off = bg * n + ci * S;
                        var dys = dy.AsSpan(dyo + off, S);
                        double sdy = CpuDoubleSums.Sum(dys);
                        double sdyxh = r * CpuDoubleSums.DotDev(dys, x.AsSpan(xo + off, S), m);
                        pb[b * C + ch] = sdy;
                        pg[b * C + ch] = sdyxh;
                        sumGdy += gamma[go + ch] * sdy;
                        sumGdyXhat += gamma[go + ch] * sdyxh;
                    }
                    // dx = r * (gamma dy - mean(gamma dy) - xhat mean(gamma dy xhat)), xhat = (x - m) r.
                    float c1 = n == 0 ? 0 : (float)(sumGdy / n);
                    float c2 = n == 0 ? 0 : (float)(r * sumGdyXhat / n);
                    for (int ci = 0; ci < cg; ci++)
                    {
                        int ch = g * cg + ci, off = bg * n + ci * S;
                        BackwardRow(x.AsSpan(xo + off, S), dy.AsSpan(dyo + off, S), gamma[go + ch], m, r, c1, c2, dx.AsSpan(dxo + off, S));
                    }
                }
            });
            CpuParallel.For(C, 64, (s, e) =>
            {
                for (int ch = s; ch < e; ch++)
                {
                    double sb = 0, sg = 0;
                    for (int b = 0; b < B; b++) { sb += pb[b * C + ch]; sg += pg[b * C + ch]; }
                    dbeta[dbo + ch] += (float)sb;
                    dgamma[dgo + ch] += (float)sg;
                }
            });
        }
        finally
        {
            ArrayPool<double>.Shared.Return(pb);
            ArrayPool<double>.Shared.Return(pg);
        }
    }

    /// <summary>dx = r * (gamma dy - c1 - (x - m) c2); exactly 0 when a group has one element.</summary>
    private static void BackwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, float gamma, float m, float r, float c1, float c2, Span<float> dx)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && x.Length >= w)
        {
            var vg = new Vector<float>(gamma); var vm = new Vector<float>(m); var vr = new Vector<float>(r);
            var v1 = new Vector<float>(c1); var v2 = new Vector<float>(c2);
            for (; i <= x.Length - w; i += w)
                (vr * (vg * new Vector<float>(dy[i..]) - v1 - (new Vector<float>(x[i..]) - vm) * v2)).CopyTo(dx[i..]);
        }
        for (; i < x.Length; i++) dx[i] = r * (gamma * dy[i] - c1 - (x[i] - m) * c2);
    }
}
