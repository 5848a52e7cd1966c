// Fallback.cs: TEMPORARY plain CPU loops of the prior's ops, used only until the registered ops
// (branch priorops) are on main; then PriorKernels calls the OpDefs and this file goes.
using MvqNative.Backends.Cpu;
using MvqNative.Tensors;

namespace MvqNative.Prior;

internal static class Fallback
{
    public static void Embedding(Tensor ids, Tensor table, Tensor y)
    {
        var id = ids.IntSpan; var tb = table.Span; var o = y.Span;
        int c = table.Dim(1);
        for (int n = 0; n < id.Length; n++) tb.Slice(id[n] * c, c).CopyTo(o.Slice(n * c, c));
    }

    public static void EmbeddingBackward(Tensor ids, Tensor dy, Tensor dtable)
    {
        var id = ids.IntSpan; var g = dy.Span; var dt = dtable.Span;
        int c = dtable.Dim(1);
        for (int n = 0; n < id.Length; n++)
        {
            var row = dt.Slice(id[n] * c, c); var src = g.Slice(n * c, c);
            for (int i = 0; i < c; i++) row[i] += src[i];
        }
    }

    public static void LayerNorm(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, float eps)
    {
        int c = gamma.Length, n = x.Length / c;
        var xa = ((CpuBuffer)x.Buffer).Data; long xo = x.Offset;
        var ya = ((CpuBuffer)y.Buffer).Data; long yo = y.Offset;
        var g = gamma.ToArray(); var bt = beta.ToArray();
        var mu = new float[n]; var rs = new float[n];
        CpuParallel.For(n, 16, (s, e) =>
        {
            for (int r = s; r < e; r++)
            {
                var row = xa.AsSpan((int)(xo + (long)r * c), c);
                float m = 0; for (int i = 0; i < c; i++) m += row[i];
                m /= c;
                float v = 0; for (int i = 0; i < c; i++) { float d = row[i] - m; v += d * d; }
                v /= c;
                float rsd = 1f / MathF.Sqrt(v + eps);
                var outRow = ya.AsSpan((int)(yo + (long)r * c), c);
                for (int i = 0; i < c; i++) outRow[i] = (row[i] - m) * rsd * g[i] + bt[i];
                mu[r] = m; rs[r] = rsd;
            }
        });
        mean.CopyFrom(mu); rstd.CopyFrom(rs);
    }

    public static void LayerNormBackward(Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta)
    {
        int c = gamma.Length, n = x.Length / c;
        var xs = x.Span; var g = gamma.Span; var mu = mean.Span; var rs = rstd.Span; var d = dy.Span; var o = dx.Span;
        var dg = dgamma.Span; var db = dbeta.Span;
        for (int r = 0; r < n; r++)
        {
            float sumD = 0, sumDX = 0;
            for (int i = 0; i < c; i++)
            {
                float xh = (xs[r * c + i] - mu[r]) * rs[r];
                float dxh = d[r * c + i] * g[i];
                sumD += dxh; sumDX += dxh * xh;
                dg[i] += d[r * c + i] * xh; db[i] += d[r * c + i];
            }
            for (int i = 0; i < c; i++)
            {
                float xh = (xs[r * c + i] - mu[r]) * rs[r];
                float dxh = d[r * c + i] * g[i];
                o[r * c + i] = rs[r] * (dxh - sumD / c - xh * sumDX / c);
            }
        }
    }

    private const float S2Pi = 0.7978845608028654f;

    public static void Gelu(Tensor x, Tensor y)
    {
        var xs = x.Span; var o = y.Span;
        for (int i = 0; i < xs.Length; i++)
        {
            float v = xs[i];
            o[i] = 0.5f * v * (1f + MathF.Tanh(S2Pi * (v + 0.044715f * v * v * v)));
        }
    }

    public static void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        var xs = x.Span; var d = dy.Span; var o = dx.Span;
        for (int i = 0; i < xs.Length; i++)
        {
            float v = xs[i];
            float u = S2Pi * (v + 0.044715f * v * v * v);
            float th = MathF.Tanh(u);
            float du = S2Pi * (1f + 3f * 0.044715f * v * v);
            o[i] = d[i] * (0.5f * (1f + th) + 0.5f * v * (1f - th * th) * du);
        }
    }

    public static void Attention(Tensor qkv, Tensor y, Tensor lse, int batch, int t, int heads)
    {
        int c3 = qkv.Dim(1), c = c3 / 3, hd = c / heads;
        float scale = 1f / MathF.Sqrt(hd);
        var qa = ((CpuBuffer)qkv.Buffer).Data; int qo = (int)qkv.Offset;
        var ya = ((CpuBuffer)y.Buffer).Data; int yo = (int)y.Offset;
        var la = ((CpuBuffer)lse.Buffer).Data; int lo = (int)lse.Offset;
        CpuParallel.For(batch * heads, 1, (s, e) =>
        {
            var sc = new float[t];
            for (int bh = s; bh < e; bh++)
            {
                int b = bh / heads, h = bh % heads;
                for (int i = 0; i < t; i++)
                {
                    int qrow = qo + (b * t + i) * c3 + h * hd;
                    float mx = float.NegativeInfinity;
                    for (int j = 0; j <= i; j++)
                    {
                        int krow = qo + (b * t + j) * c3 + c + h * hd;
                        float acc = 0;
                        for (int k = 0; k < hd; k++) acc += qa[qrow + k] * qa[krow + k];
                        sc[j] = acc * scale;
                        if (sc[j] > mx) mx = sc[j];
                    }
                    float sum = 0;
                    for (int j = 0; j <= i; j++) { sc[j] = MathF.Exp(sc[j] - mx); sum += sc[j]; }
                    int yrow = yo + (b * t + i) * c + h * hd;
                    for (int k = 0; k < hd; k++) ya[yrow + k] = 0;
                    for (int j = 0; j <= i; j++)
                    {
                        float p = sc[j] / sum;
                        int vrow = qo + (b * t + j) * c3 + 2 * c + h * hd;
                        for (int k = 0; k < hd; k++) ya[yrow + k] += p * qa[vrow + k];
                    }
                    la[lo + (b * heads + h) * t + i] = mx + MathF.Log(sum);
                }
            }
        });
    }

    public static void AttentionBackward(Tensor qkv, Tensor y, Tensor lse, Tensor dy, Tensor dqkv, int batch, int t, int heads)
    {
        int c3 = qkv.Dim(1), c = c3 / 3, hd = c / heads;
        float scale = 1f / MathF.Sqrt(hd);
        var qa = ((CpuBuffer)qkv.Buffer).Data; int qo = (int)qkv.Offset;
        var ya = ((CpuBuffer)y.Buffer).Data; int yo = (int)y.Offset;
        var la = ((CpuBuffer)lse.Buffer).Data; int lo = (int)lse.Offset;
        var da = ((CpuBuffer)dy.Buffer).Data; int dyo = (int)dy.Offset;
        var ga = ((CpuBuffer)dqkv.Buffer).Data; int go = (int)dqkv.Offset;
        dqkv.Zero();
        CpuParallel.For(batch * heads, 1, (s, e) =>
        {
            for (int bh = s; bh < e; bh++)
            {
                int b = bh / heads, h = bh % heads;
                for (int i = 0; i < t; i++)
                {
                    int qrow = qo + (b * t + i) * c3 + h * hd;
                    int drow = dyo + (b * t + i) * c + h * hd;
                    int yrow = yo + (b * t + i) * c + h * hd;
                    float di = 0;
                    for (int k = 0; k < hd; k++) di += da[drow + k] * ya[yrow + k];
                    float l = la[lo + (b * heads + h) * t + i];
                    for (int j = 0; j <= i; j++)
                    {
                        int krow = qo + (b * t + j) * c3 + c + h * hd;
                        int vrow = krow + c;
                        float acc = 0, dp = 0;
                        for (int k = 0; k < hd; k++) { acc += qa[qrow + k] * qa[krow + k]; dp += da[drow + k] * qa[vrow + k]; }
                        float p = MathF.Exp(acc * scale - l);
                        float ds = p * (dp - di) * scale;
                        int gq = go + (b * t + i) * c3 + h * hd, gk = go + (b * t + j) * c3 + c + h * hd, gv = gk + c;
                        for (int k = 0; k < hd; k++)
                        {
                            ga[gq + k] += ds * qa[krow + k];
                            ga[gk + k] += ds * qa[qrow + k];
                            ga[gv + k] += p * da[drow + k];
                        }
                    }
                }
            }
        });
    }

    public static void KvCacheAppend(Tensor qkv, Tensor pos, Tensor kcache, Tensor vcache)
    {
        int p = pos.IntSpan[0];
        int b = qkv.Dim(0), c = qkv.Dim(1) / 3, tmax = kcache.Dim(1);
        var q = qkv.Span; var k = kcache.Span; var v = vcache.Span;
        for (int i = 0; i < b; i++)
        {
            q.Slice(i * 3 * c + c, c).CopyTo(k.Slice((i * tmax + p) * c, c));
            q.Slice(i * 3 * c + 2 * c, c).CopyTo(v.Slice((i * tmax + p) * c, c));
        }
    }

    public static void AttentionDecode(Tensor qkv, Tensor kcache, Tensor vcache, Tensor pos, Tensor y, int heads)
    {
        int p = pos.IntSpan[0];
        int b = qkv.Dim(0), c = qkv.Dim(1) / 3, tmax = kcache.Dim(1), hd = c / heads;
        float scale = 1f / MathF.Sqrt(hd);
        var q = qkv.Span; var k = kcache.Span; var v = vcache.Span; var o = y.Span;
        var sc = new float[p + 1];
        for (int i = 0; i < b; i++)
            for (int h = 0; h < heads; h++)
            {
                float mx = float.NegativeInfinity;
                for (int j = 0; j <= p; j++)
                {
                    float acc = 0;
                    for (int d = 0; d < hd; d++) acc += q[i * 3 * c + h * hd + d] * k[(i * tmax + j) * c + h * hd + d];
                    sc[j] = acc * scale; if (sc[j] > mx) mx = sc[j];
                }
                float sum = 0;
                for (int j = 0; j <= p; j++) { sc[j] = MathF.Exp(sc[j] - mx); sum += sc[j]; }
                for (int d = 0; d < hd; d++)
                {
                    float acc = 0;
                    for (int j = 0; j <= p; j++) acc += sc[j] * v[(i * tmax + j) * c + h * hd + d];
                    o[i * c + h * hd + d] = acc / sum;
                }
            }
    }

    public static void CrossEntropy(Tensor logits, Tensor targets, Tensor bounds, Tensor loss, Tensor lse)
    {
        int n = logits.Dim(0), v = logits.Dim(1);
        var lg = logits.Span; var tg = targets.IntSpan; var bd = bounds.IntSpan; var ls = loss.Span; var le = lse.Span;
        for (int r = 0; r < n; r++)
        {
            int lo = bd[2 * r], hi = bd[2 * r + 1];
            float mx = float.NegativeInfinity;
            for (int j = lo; j < hi; j++) mx = MathF.Max(mx, lg[r * v + j]);
            double sum = 0;
            for (int j = lo; j < hi; j++) sum += Math.Exp(lg[r * v + j] - mx);
            le[r] = mx + (float)Math.Log(sum);
            ls[r] = le[r] - lg[r * v + tg[r]];
        }
    }

    public static void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor bounds, Tensor lse, Tensor dloss, Tensor dlogits)
    {
        int n = logits.Dim(0), v = logits.Dim(1);
        var lg = logits.Span; var tg = targets.IntSpan; var bd = bounds.IntSpan; var le = lse.Span; var dl = dloss.Span; var o = dlogits.Span;
        for (int r = 0; r < n; r++)
        {
            int lo = bd[2 * r], hi = bd[2 * r + 1];
            for (int j = 0; j < v; j++)
                o[r * v + j] = j >= lo && j < hi ? dl[r] * (MathF.Exp(lg[r * v + j] - le[r]) - (j == tg[r] ? 1f : 0f)) : 0f;
        }
    }
}
