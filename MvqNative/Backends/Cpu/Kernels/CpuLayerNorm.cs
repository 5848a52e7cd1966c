// CPU layer normalisation over the last dimension: forward and backward, parallel over rows.
using System.Buffers;
using System.Numerics;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Layer norm on the CPU. Row statistics in double (two passes, no cancellation); the row
/// loops are SIMD. Parameter gradients: each fixed chunk of <see cref="ChunkRows"/> rows sums
/// its rows in order into a partial, and the partials are added in chunk order, so results are
/// bit-identical for any thread count.
/// </summary>
internal static class CpuLayerNorm
{
    internal const int ChunkRows = 32;

    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    public static void Forward(in OpCall call)
    {
        var (n, c) = LayerNormOps.Rows(call.In[0]);
        float eps = call.A<LayerNormAttrs>().Eps;
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var gamma = D(call.In[1]); int go = (int)call.In[1].Offset;
        var beta = D(call.In[2]); int bo = (int)call.In[2].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        var mean = D(call.Out[1]); int mo = (int)call.Out[1].Offset;
        var rstd = D(call.Out[2]); int ro = (int)call.Out[2].Offset;
        CpuParallel.For(n, Math.Max(1, 8192 / Math.Max(1, c)), (s, e) =>
        {
            var g = gamma.AsSpan(go, c); var b = beta.AsSpan(bo, c);
            for (int r = s; r < e; r++)
            {
                var xs = x.AsSpan(xo + r * c, c);
                double m = CpuDoubleSums.Sum(xs) / c;
                double v = CpuDoubleSums.SumSqDev(xs, m) / c;
                float rs = (float)(1 / Math.Sqrt(v + eps));
                mean[mo + r] = (float)m;
                rstd[ro + r] = rs;
                // (x - mf) is exact for x near mf; dm carries the part of the mean that float rounding dropped.
                float mf = (float)m, dm = (float)(m - mf);
                Row(xs, g, b, mf, dm, rs, y.AsSpan(yo + r * c, c));
            }
        });
    }

    /// <summary>y = ((x - m) - dm) * r * gamma + beta.</summary>
    private static void Row(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float m, float dm, float r, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && x.Length >= w)
        {
            var vm = new Vector<float>(m); var vd = new Vector<float>(dm); var vr = new Vector<float>(r);
            for (; i <= x.Length - w; i += w)
                (((new Vector<float>(x[i..]) - vm) - vd) * vr * new Vector<float>(gamma[i..]) + new Vector<float>(beta[i..])).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] = ((x[i] - m) - dm) * r * gamma[i] + beta[i];
    }

    public static void Backward(in OpCall call)
    {
        var (n, c) = LayerNormOps.Rows(call.In[0]);
        var x = D(call.In[0]); int xo = (int)call.In[0].Offset;
        var gamma = D(call.In[1]); int go = (int)call.In[1].Offset;
        var mean = D(call.In[2]); int mo = (int)call.In[2].Offset;
        var rstd = D(call.In[3]); int ro = (int)call.In[3].Offset;
        var dy = D(call.In[4]); int dyo = (int)call.In[4].Offset;
        var dx = D(call.Out[0]); int dxo = (int)call.Out[0].Offset;
        var dgamma = D(call.Out[1]); int dgo = (int)call.Out[1].Offset;
        var dbeta = D(call.Out[2]); int dbo = (int)call.Out[2].Offset;
        if (n == 0 || c == 0) return;

        int chunks = (n + ChunkRows - 1) / ChunkRows;
        // part[k] = [sum dy xhat (C) | sum dy (C)] of chunk k.
        var part = ArrayPool<float>.Shared.Rent(chunks * 2 * c);
        try
        {
            CpuParallel.For(chunks, Math.Max(1, 4096 / (ChunkRows * c) + 1), (s, e) =>
            {
                var g = gamma.AsSpan(go, c);
                for (int k = s; k < e; k++)
                {
                    var pg = part.AsSpan(k * 2 * c, c); var pb = part.AsSpan(k * 2 * c + c, c);
                    pg.Clear(); pb.Clear();
                    int r1 = Math.Min(n, (k + 1) * ChunkRows);
                    for (int r = k * ChunkRows; r < r1; r++)
                        BackwardRow(x.AsSpan(xo + r * c, c), dy.AsSpan(dyo + r * c, c), g, mean[mo + r], rstd[ro + r], dx.AsSpan(dxo + r * c, c), pg, pb);
                }
            });
            CpuParallel.For(c, 256, (s, e) =>
            {
                for (int j = s; j < e; j++)
                {
                    float sg = 0, sb = 0;
                    for (int k = 0; k < chunks; k++) { sg += part[k * 2 * c + j]; sb += part[k * 2 * c + c + j]; }
                    dgamma[dgo + j] += sg;
                    dbeta[dbo + j] += sb;
                }
            });
        }
        finally { ArrayPool<float>.Shared.Return(part); }
    }

    /// <summary>One row: dx written, pg += dy xhat, pb += dy.</summary>
    private static void BackwardRow(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, ReadOnlySpan<float> gamma, float m, float r,
        Span<float> dx, Span<float> pg, Span<float> pb)
    {
        int c = x.Length, w = Vector<float>.Count, i = 0;
        float s1 = 0, s2 = 0;
        var vm = new Vector<float>(m); var vr = new Vector<float>(r);
        if (Vector.IsHardwareAccelerated && c >= w)
        {
            Vector<float> a1 = Vector<float>.Zero, a2 = Vector<float>.Zero;
            for (; i <= c - w; i += w)
            {
                var d = new Vector<float>(dy[i..]);
                var xh = (new Vector<float>(x[i..]) - vm) * vr;
                var gd = d * new Vector<float>(gamma[i..]);
                a1 += gd; a2 += gd * xh;
                (new Vector<float>(pg[i..]) + d * xh).CopyTo(pg[i..]);
                (new Vector<float>(pb[i..]) + d).CopyTo(pb[i..]);
            }
            s1 = Vector.Sum(a1); s2 = Vector.Sum(a2);
        }
        for (; i < c; i++)
        {
            float xh = (x[i] - m) * r, gd = dy[i] * gamma[i];
            s1 += gd; s2 += gd * xh;
            pg[i] += dy[i] * xh; pb[i] += dy[i];
        }
        float c1 = s1 / c, c2 = s2 / c;
        i = 0;
        if (Vector.IsHardwareAccelerated && c >= w)
        {
            var v1 = new Vector<float>(c1); var v2 = new Vector<float>(c2);
            for (; i <= c - w; i += w)
            {
                var xh = (new Vector<float>(x[i..]) - vm) * vr;
                (vr * (new Vector<float>(dy[i..]) * new Vector<float>(gamma[i..]) - v1 - xh * v2)).CopyTo(dx[i..]);
            }
        }
        for (; i < c; i++) dx[i] = r * (dy[i] * gamma[i] - c1 - (x[i] - m) * r * c2);
    }
}
