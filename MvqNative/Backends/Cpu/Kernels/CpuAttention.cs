// CPU fused causal attention (forward, backward) and the KV-cache decode step, one task per (batch, head).
using System.Numerics;
using System.Numerics.Tensors;
using MvqNative.Ops;
using MvqNative.Tensors;
using Tensor = MvqNative.Tensors.Tensor;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Attention on the CPU: each (b, h) runs as one sequential loop over its queries with a row-wise
/// softmax (one score row of at most T floats per thread, never a [T, T] matrix). The backward
/// recomputes the probabilities from lse; dk and dv of a head are summed over queries in
/// increasing order inside one task, so results do not depend on the thread count.
/// </summary>
internal static class CpuAttention
{
    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    /// <summary>Checks the shapes shared by the attention ops; returns C and the head width.</summary>
    internal static (int C, int Hd) Check(Tensor qkv, int rows, int heads, string op)
    {
        if (qkv.Rank != 2 || qkv.Dim(0) != rows || qkv.Dim(1) % 3 != 0)
            throw new ArgumentException($"{op}: qkv must be [{rows}, 3C], got {qkv}");
        int c = qkv.Dim(1) / 3;
        if (heads <= 0 || c % heads != 0) throw new ArgumentException($"{op}: C = {c} is not divisible into {heads} heads");
        return (c, c / heads);
    }

    internal static void Expect(Tensor t, long len, string what, string op)
    {
        if (t.Length != len) throw new ArgumentException($"{op}: {what} has {t.Length} elements, expected {len} ({t})");
    }

    internal static int Pos(Tensor pos, int tmax, string op)
    {
        if (pos.DType != DType.I32 || pos.Length != 1) throw new ArgumentException($"{op}: pos must be I32 [1], got {pos}");
        int p = pos.IntSpan[0];
        if ((uint)p >= (uint)tmax) throw new ArgumentOutOfRangeException(nameof(pos), $"{op}: pos {p} outside [0, {tmax})");
        return p;
    }

    /// <summary>y += a x over a row.</summary>
    private static void Axpy(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0, w = Vector<float>.Count;
        if (Vector.IsHardwareAccelerated && x.Length >= w)
        {
            var va = new Vector<float>(a);
            for (; i <= x.Length - w; i += w) (new Vector<float>(y[i..]) + va * new Vector<float>(x[i..])).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] += a * x[i];
    }

    /// <summary>y = a x over a row.</summary>
    private static void Scale(float a, ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Multiply(x, a, y);

    public static void Forward(in OpCall call)
    {
        const string op = "attention_forward";
        var at = call.A<AttentionAttrs>();
        int B = at.B, T = at.T, H = at.H;
        var (C, hd) = Check(call.In[0], B * T, H, op);
        Expect(call.Out[0], (long)B * T * C, "y", op);
        Expect(call.Out[1], (long)B * H * T, "lse", op);
        var qkv = D(call.In[0]); int qo = (int)call.In[0].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        var lse = D(call.Out[1]); int lo = (int)call.Out[1].Offset;
        int c3 = 3 * C;
        float scale = 1f / MathF.Sqrt(hd);
        CpuParallel.For(B * H, Math.Max(1, 32768 / Math.Max(1, T * T * hd)), (s, e) =>
        {
            var p = new float[T];
            var acc = new float[hd];
            for (int bh = s; bh < e; bh++)
            {
                int b = bh / H, h = bh % H, row0 = b * T;
                for (int t = 0; t < T; t++)
                {
                    var q = qkv.AsSpan(qo + (row0 + t) * c3 + h * hd, hd);
                    float max = float.NegativeInfinity;
                    for (int j = 0; j <= t; j++)
                    {
                        float sc = scale * TensorPrimitives.Dot(q, qkv.AsSpan(qo + (row0 + j) * c3 + C + h * hd, hd));
                        p[j] = sc;
                        if (sc > max) max = sc;
                    }
                    var pr = p.AsSpan(0, t + 1);
                    TensorPrimitives.Subtract(pr, max, pr);
                    TensorPrimitives.Exp(pr, pr);
                    float sum = TensorPrimitives.Sum(pr);
                    acc.AsSpan().Clear();
                    for (int j = 0; j <= t; j++) Axpy(p[j], qkv.AsSpan(qo + (row0 + j) * c3 + 2 * C + h * hd, hd), acc);
                    Scale(1f / sum, acc, y.AsSpan(yo + (row0 + t) * C + h * hd, hd));
                    lse[lo + bh * T + t] = max + MathF.Log(sum);
                }
            }
        });
    }

    public static void Backward(in OpCall call)
    {
        const string op = "attention_backward";
        var at = call.A<AttentionAttrs>();
        int B = at.B, T = at.T, H = at.H;
        var (C, hd) = Check(call.In[0], B * T, H, op);
        Expect(call.In[1], (long)B * T * C, "y", op);
        Expect(call.In[2], (long)B * H * T, "lse", op);
        Expect(call.In[3], (long)B * T * C, "dy", op);
        Expect(call.Out[0], (long)B * T * 3 * C, "dqkv", op);
        var qkv = D(call.In[0]); int qo = (int)call.In[0].Offset;
        var y = D(call.In[1]); int yo = (int)call.In[1].Offset;
        var lse = D(call.In[2]); int lo = (int)call.In[2].Offset;
        var dy = D(call.In[3]); int dyo = (int)call.In[3].Offset;
        var dqkv = D(call.Out[0]); int go = (int)call.Out[0].Offset;
        int c3 = 3 * C;
        float scale = 1f / MathF.Sqrt(hd);
        CpuParallel.For(B * H, Math.Max(1, 16384 / Math.Max(1, T * T * hd)), (s, e) =>
        {
            var p = new float[T];
            var ds = new float[T];
            for (int bh = s; bh < e; bh++)
            {
                int b = bh / H, h = bh % H, row0 = b * T;
                // dk, dv of this head are accumulated over queries: clear them first.
                for (int j = 0; j < T; j++)
                {
                    dqkv.AsSpan(go + (row0 + j) * c3 + C + h * hd, hd).Clear();
                    dqkv.AsSpan(go + (row0 + j) * c3 + 2 * C + h * hd, hd).Clear();
                }
                for (int t = 0; t < T; t++)
                {
                    var q = qkv.AsSpan(qo + (row0 + t) * c3 + h * hd, hd);
                    var g = dy.AsSpan(dyo + (row0 + t) * C + h * hd, hd);
                    float dd = TensorPrimitives.Dot(g, y.AsSpan(yo + (row0 + t) * C + h * hd, hd));
                    float l = lse[lo + bh * T + t];
                    for (int j = 0; j <= t; j++)
                    {
                        p[j] = scale * TensorPrimitives.Dot(q, qkv.AsSpan(qo + (row0 + j) * c3 + C + h * hd, hd)) - l;
                        ds[j] = TensorPrimitives.Dot(g, qkv.AsSpan(qo + (row0 + j) * c3 + 2 * C + h * hd, hd));
                    }
                    var pr = p.AsSpan(0, t + 1);
                    TensorPrimitives.Exp(pr, pr);
                    var dq = dqkv.AsSpan(go + (row0 + t) * c3 + h * hd, hd);
                    dq.Clear();
                    for (int j = 0; j <= t; j++)
                    {
                        float dsj = p[j] * (ds[j] - dd);
                        int krow = go + (row0 + j) * c3 + C + h * hd;
                        Axpy(scale * dsj, qkv.AsSpan(qo + (row0 + j) * c3 + C + h * hd, hd), dq);
                        Axpy(scale * dsj, q, dqkv.AsSpan(krow, hd));
                        Axpy(p[j], g, dqkv.AsSpan(krow + C, hd));
                    }
                }
            }
        });
    }

    public static void KvCacheAppend(in OpCall call)
    {
        const string op = "kv_cache_append";
        var at = call.A<AttentionAttrs>();
        var (C, _) = Check(call.In[0], at.B, at.H, op);
        Expect(call.Out[0], (long)at.B * at.T * C, "kcache", op);
        Expect(call.Out[1], (long)at.B * at.T * C, "vcache", op);
        int pos = Pos(call.In[1], at.T, op);
        var qkv = call.In[0].Span; var kc = call.Out[0].Span; var vc = call.Out[1].Span;
        for (int b = 0; b < at.B; b++)
        {
            qkv.Slice(b * 3 * C + C, C).CopyTo(kc.Slice((b * at.T + pos) * C, C));
            qkv.Slice(b * 3 * C + 2 * C, C).CopyTo(vc.Slice((b * at.T + pos) * C, C));
        }
    }

    public static void Decode(in OpCall call)
    {
        const string op = "attention_decode";
        var at = call.A<AttentionAttrs>();
        int B = at.B, Tm = at.T, H = at.H;
        var (C, hd) = Check(call.In[0], B, H, op);
        Expect(call.In[1], (long)B * Tm * C, "kcache", op);
        Expect(call.In[2], (long)B * Tm * C, "vcache", op);
        Expect(call.Out[0], (long)B * C, "y", op);
        int pos = Pos(call.In[3], Tm, op);
        var qkv = D(call.In[0]); int qo = (int)call.In[0].Offset;
        var kc = D(call.In[1]); int ko = (int)call.In[1].Offset;
        var vc = D(call.In[2]); int vo = (int)call.In[2].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        float scale = 1f / MathF.Sqrt(hd);
        CpuParallel.For(B * H, Math.Max(1, 32768 / Math.Max(1, (pos + 1) * hd)), (s, e) =>
        {
            var p = new float[pos + 1];
            var acc = new float[hd];
            for (int bh = s; bh < e; bh++)
            {
                int b = bh / H, h = bh % H;
                var q = qkv.AsSpan(qo + b * 3 * C + h * hd, hd);
                float max = float.NegativeInfinity;
                for (int j = 0; j <= pos; j++)
                {
                    float sc = scale * TensorPrimitives.Dot(q, kc.AsSpan(ko + (b * Tm + j) * C + h * hd, hd));
                    p[j] = sc;
                    if (sc > max) max = sc;
                }
                TensorPrimitives.Subtract(p, max, p);
                TensorPrimitives.Exp(p, p);
                float sum = TensorPrimitives.Sum(p);
                acc.AsSpan().Clear();
                for (int j = 0; j <= pos; j++) Axpy(p[j], vc.AsSpan(vo + (b * Tm + j) * C + h * hd, hd), acc);
                Scale(1f / sum, acc, y.AsSpan(yo + b * C + h * hd, hd));
            }
        });
    }
}
