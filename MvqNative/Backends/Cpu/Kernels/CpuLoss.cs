// CPU reconstruction losses (mse, l1) with their gradients, and the sum of squared errors.
using System.Numerics;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Loss kernels: the reduction is in double over fixed-size blocks added in block order
/// (bit-reproducible for any thread count); the gradient is written in the same pass.
/// </summary>
internal static class CpuLoss
{
    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    public static void Mse(in OpCall c)
    {
        var at = c.A<LossAttrs>();
        var p = D(c.In[0]); int po = (int)c.In[0].Offset;
        var t = D(c.In[1]); int to = (int)c.In[1].Offset;
        var g = D(c.Out[1]); int go = (int)c.Out[1].Offset;
        int n = c.In[0].Length;
        float k = (float)(at.Scale * 2.0 / n);
        double total = CpuDoubleSums.Blocked(n, (s, e) =>
        {
            ScaledDiff(p.AsSpan(po + s, e - s), t.AsSpan(to + s, e - s), k, g.AsSpan(go + s, e - s));
            return CpuDoubleSums.SumSqDiff(p.AsSpan(po + s, e - s), t.AsSpan(to + s, e - s));
        });
        D(c.Out[0])[(int)c.Out[0].Offset] = (float)(at.Scale * total / n);
    }

    public static void L1(in OpCall c)
    {
        var at = c.A<LossAttrs>();
        var p = D(c.In[0]); int po = (int)c.In[0].Offset;
        var t = D(c.In[1]); int to = (int)c.In[1].Offset;
        var g = D(c.Out[1]); int go = (int)c.Out[1].Offset;
        int n = c.In[0].Length;
        float k = (float)((double)at.Scale / n);
        double total = CpuDoubleSums.Blocked(n, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                float d = p[po + i] - t[to + i];
                // sign(0) = 0; a NaN difference stays NaN so that it is noticed.
                g[go + i] = d > 0 ? k : d < 0 ? -k : d * k;
            }
            return CpuDoubleSums.SumAbsDiff(p.AsSpan(po + s, e - s), t.AsSpan(to + s, e - s));
        });
        D(c.Out[0])[(int)c.Out[0].Offset] = (float)(at.Scale * total / n);
    }

    public static void SumSquaredError(in OpCall c)
    {
        var a = c.In[0]; var b = c.In[1];
        var x = D(a); int xo = (int)a.Offset;
        var y = D(b); int yo = (int)b.Offset;
        double total = CpuDoubleSums.Blocked(a.Length, (s, e) => CpuDoubleSums.SumSqDiff(x.AsSpan(xo + s, e - s), y.AsSpan(yo + s, e - s)));
        D(c.Out[0])[(int)c.Out[0].Offset] = (float)total;
    }

    /// <summary>g = k * (p - t).</summary>
    private static void ScaledDiff(ReadOnlySpan<float> p, ReadOnlySpan<float> t, float k, Span<float> g)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && p.Length >= w)
        {
            var vk = new Vector<float>(k);
            for (; i <= p.Length - w; i += w) ((new Vector<float>(p[i..]) - new Vector<float>(t[i..])) * vk).CopyTo(g[i..]);
        }
        for (; i < p.Length; i++) g[i] = (p[i] - t[i]) * k;
    }
}
