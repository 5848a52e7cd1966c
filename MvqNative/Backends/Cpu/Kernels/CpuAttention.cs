// CPU fused causal attention (forward, backward) and the KV-cache decode step, one task per (batch, head).
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using MvqNative.Ops;
using MvqNative.Tensors;
using Tensor = MvqNative.Tensors.Tensor;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// Attention on the CPU: each (b, h) runs as one sequential loop over its queries with a row-wise
/// softmax (one score row of at most T floats per thread, never a [T, T] matrix). A head's keys and
/// values are first packed transposed ([hd, T], padded to 8 columns), so a query's scores are
/// Vector256 FMAs over 8 keys at a time with no horizontal sums; weighted sums of rows run over
/// padded [T, hd] rows with 4 accumulators. The backward recomputes the probabilities from lse;
/// dk and dv of a head are summed over queries in increasing order inside one task, so results
/// do not depend on the thread count.
/// </summary>
internal static class CpuAttention
{
    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    internal static int Pos(Tensor pos, int tmax, string op)
    {
        int p = pos.IntSpan[0];
        if ((uint)p >= (uint)tmax) throw new ArgumentOutOfRangeException(nameof(pos), $"{op}: pos {p} outside [0, {tmax})");
        return p;
    }

    private const int W = 8; // floats per Vector256

    private static int Round8(int n) => (n + W - 1) / W * W;

    /// <summary>dst[d * tp + j] = src[j * stride + d] for j &lt; t, d &lt; hd (keys or values of one head, transposed); columns t..tp zero.</summary>
    private static unsafe void PackTransposed(float* src, int stride, int t, int hd, int tp, float* dst)
    {
        for (int d = 0; d < hd; d++)
        {
            float* row = dst + d * tp;
            for (int j = 0; j < t; j++) row[j] = src[j * stride + d];
            for (int j = t; j < tp; j++) row[j] = 0;
        }
    }

    /// <summary>dst[j * hdp + d] = src[j * stride + d] for j &lt; t, d &lt; hd; columns hd..hdp zero.</summary>
    private static unsafe void PackRows(float* src, int stride, int t, int hd, int hdp, float* dst)
    {
        for (int j = 0; j < t; j++)
        {
            new ReadOnlySpan<float>(src + j * stride, hd).CopyTo(new Span<float>(dst + j * hdp, hd));
            for (int d = hd; d < hdp; d++) dst[j * hdp + d] = 0;
        }
    }

    /// <summary>s[j] = scale * sum_d q[d] kt[d * tp + j] for j &lt; 8 * blocks (vectorised over keys, no horizontal sums).</summary>
    private static unsafe void Scores(float* q, int hd, float* kt, int tp, int blocks, float scale, float* s)
    {
        var vs = Vector256.Create(scale);
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* k = kt + b * W;
            for (int d = 0; d < hd; d++, k += tp)
            {
                var qd = Vector256.Create(q[d]);
                a0 = Vector256.FusedMultiplyAdd(qd, Vector256.Load(k), a0);
                a1 = Vector256.FusedMultiplyAdd(qd, Vector256.Load(k + W), a1);
                a2 = Vector256.FusedMultiplyAdd(qd, Vector256.Load(k + 2 * W), a2);
                a3 = Vector256.FusedMultiplyAdd(qd, Vector256.Load(k + 3 * W), a3);
            }
            (a0 * vs).Store(s + b * W); (a1 * vs).Store(s + b * W + W); (a2 * vs).Store(s + b * W + 2 * W); (a3 * vs).Store(s + b * W + 3 * W);
        }
        for (; b < blocks; b++)
        {
            Vector256<float> a0 = default;
            float* k = kt + b * W;
            for (int d = 0; d < hd; d++, k += tp) a0 = Vector256.FusedMultiplyAdd(Vector256.Create(q[d]), Vector256.Load(k), a0);
            (a0 * vs).Store(s + b * W);
        }
    }

    /// <summary>o[0..hdp) = sum_{j &lt; n} p[j] rows[j * hdp ..] (rows padded to hdp, a multiple of 8).</summary>
    private static unsafe void WeightedRows(float* p, int n, float* rows, int hdp, float* o)
    {
        int v = 0;
        for (; v + 4 * W <= hdp; v += 4 * W)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* r = rows + v;
            for (int j = 0; j < n; j++, r += hdp)
            {
                var pj = Vector256.Create(p[j]);
                a0 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(r), a0);
                a1 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(r + W), a1);
                a2 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(r + 2 * W), a2);
                a3 = Vector256.FusedMultiplyAdd(pj, Vector256.Load(r + 3 * W), a3);
            }
            a0.Store(o + v); a1.Store(o + v + W); a2.Store(o + v + 2 * W); a3.Store(o + v + 3 * W);
        }
        for (; v < hdp; v += W)
        {
            Vector256<float> a0 = default;
            float* r = rows + v;
            for (int j = 0; j < n; j++, r += hdp) a0 = Vector256.FusedMultiplyAdd(Vector256.Create(p[j]), Vector256.Load(r), a0);
            a0.Store(o + v);
        }
    }

    public static unsafe void Forward(in OpCall call)
    {
        var at = call.A<AttentionAttrs>();
        int B = at.B, T = at.T, H = at.H;
        int C = call.In[0].Dim(1) / 3, hd = C / H;
        if ((long)B * T * C == 0) return;
        var qkv = D(call.In[0]); int qo = (int)call.In[0].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        var lse = D(call.Out[1]); int lo = (int)call.Out[1].Offset;
        int c3 = 3 * C, tp = Round8(T), hdp = Round8(hd);
        float scale = 1f / MathF.Sqrt(hd);
        CpuParallel.For(B * H, Math.Max(1, 32768 / Math.Max(1, T * T * hd)), (s0, e0) =>
        {
            // Per task: one head's keys transposed [hd, tp], values [T, hdp], a score row, an output row.
            var buf = new float[hd * tp + T * hdp + tp + hdp];
            fixed (float* pq = qkv, py = y, pb = buf)
            {
                float* kt = pb, vr = kt + hd * tp, srow = vr + T * hdp, acc = srow + tp;
                for (int bh = s0; bh < e0; bh++)
                {
                    int b = bh / H, h = bh % H;
                    float* head = pq + qo + b * T * c3 + h * hd;
                    PackTransposed(head + C, c3, T, hd, tp, kt);
                    PackRows(head + 2 * C, c3, T, hd, hdp, vr);
                    for (int t = 0; t < T; t++)
                    {
                        int n = t + 1;
                        Scores(head + t * c3, hd, kt, tp, (n + W - 1) / W, scale, srow);
                        var sr = new Span<float>(srow, n);
                        float max = CpuMath.Max(sr);
                        float sum = CpuMath.ExpShiftSum(sr, max, sr);
                        WeightedRows(srow, n, vr, hdp, acc);
                        TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc, hd), 1f / sum, new Span<float>(py + yo + (b * T + t) * C + h * hd, hd));
                        lse[lo + bh * T + t] = max + MathF.Log(sum);
                    }
                }
            }
        });
    }

    public static unsafe void Backward(in OpCall call)
    {
        var at = call.A<AttentionAttrs>();
        int B = at.B, T = at.T, H = at.H;
        int C = call.In[0].Dim(1) / 3, hd = C / H;
        if ((long)B * T * C == 0) return;
        var qkv = D(call.In[0]); int qo = (int)call.In[0].Offset;
        var y = D(call.In[1]); int yo = (int)call.In[1].Offset;
        var lse = D(call.In[2]); int lo = (int)call.In[2].Offset;
        var dy = D(call.In[3]); int dyo = (int)call.In[3].Offset;
        var dqkv = D(call.Out[0]); int go = (int)call.Out[0].Offset;
        int c3 = 3 * C, tp = Round8(T), hdp = Round8(hd);
        float scale = 1f / MathF.Sqrt(hd);
        CpuParallel.For(B * H, Math.Max(1, 16384 / Math.Max(1, T * T * hd)), (s0, e0) =>
        {
            // Per task: keys and values transposed [hd, tp], keys as rows [T, hdp], dk and dv rows [T, hdp],
            // probability and gradient rows [tp], padded q, dy and dq rows [hdp].
            var buf = new float[2 * hd * tp + 3 * T * hdp + 2 * tp + 3 * hdp];
            fixed (float* pq = qkv, pdy = dy, py = y, pg = dqkv, pb = buf)
            {
                float* kt = pb, vt = kt + hd * tp, kr = vt + hd * tp, dk = kr + T * hdp, dv = dk + T * hdp;
                float* prow = dv + T * hdp, dsrow = prow + tp, qp = dsrow + tp, gp = qp + hdp, dq = gp + hdp;
                for (int bh = s0; bh < e0; bh++)
                {
                    int b = bh / H, h = bh % H;
                    float* head = pq + qo + b * T * c3 + h * hd;
                    float* ghead = pg + go + b * T * c3 + h * hd;
                    PackTransposed(head + C, c3, T, hd, tp, kt);
                    PackTransposed(head + 2 * C, c3, T, hd, tp, vt);
                    PackRows(head + C, c3, T, hd, hdp, kr);
                    new Span<float>(dk, 2 * T * hdp).Clear();
                    new Span<float>(qp, 2 * hdp).Clear();
                    for (int t = 0; t < T; t++)
                    {
                        int n = t + 1, blocks = (n + W - 1) / W;
                        float* q = head + t * c3;
                        float* g = pdy + dyo + (b * T + t) * C + h * hd;
                        new ReadOnlySpan<float>(q, hd).CopyTo(new Span<float>(qp, hd));
                        new ReadOnlySpan<float>(g, hd).CopyTo(new Span<float>(gp, hd));
                        float dd = TensorPrimitives.Dot(new ReadOnlySpan<float>(g, hd), new ReadOnlySpan<float>(py + yo + (b * T + t) * C + h * hd, hd));
                        // p = exp(scale q.k - lse), ds = p (dy.v - D).
                        Scores(q, hd, kt, tp, blocks, scale, prow);
                        Scores(g, hd, vt, tp, blocks, 1f, dsrow);
                        var pr = new Span<float>(prow, n); var dr = new Span<float>(dsrow, n);
                        CpuMath.ExpShiftScale(pr, lse[lo + bh * T + t], 1f, pr);
                        TensorPrimitives.Subtract(dr, dd, dr);
                        TensorPrimitives.Multiply(dr, pr, dr);
                        WeightedRows(dsrow, n, kr, hdp, dq);
                        TensorPrimitives.Multiply(new ReadOnlySpan<float>(dq, hd), scale, new Span<float>(ghead + t * c3, hd));
                        // dk_j += scale ds_j q_t, dv_j += p_j dy_t (j &lt;= t, in increasing t).
                        for (int v = 0; v < hdp; v += W)
                        {
                            var qv = Vector256.Load(qp + v) * scale;
                            var gv = Vector256.Load(gp + v);
                            float* dkj = dk + v, dvj = dv + v;
                            for (int j = 0; j < n; j++, dkj += hdp, dvj += hdp)
                            {
                                Vector256.FusedMultiplyAdd(Vector256.Create(dsrow[j]), qv, Vector256.Load(dkj)).Store(dkj);
                                Vector256.FusedMultiplyAdd(Vector256.Create(prow[j]), gv, Vector256.Load(dvj)).Store(dvj);
                            }
                        }
                    }
                    for (int j = 0; j < T; j++)
                    {
                        new ReadOnlySpan<float>(dk + j * hdp, hd).CopyTo(new Span<float>(ghead + j * c3 + C, hd));
                        new ReadOnlySpan<float>(dv + j * hdp, hd).CopyTo(new Span<float>(ghead + j * c3 + 2 * C, hd));
                    }
                }
            }
        });
    }

    public static void KvCacheAppend(in OpCall call)
    {
        const string op = "kv_cache_append";
        var at = call.A<AttentionAttrs>();
        int C = call.In[0].Dim(1) / 3;
        int pos = Pos(call.In[1], at.T, op);
        var qkv = call.In[0].Span; var kc = call.Out[0].Span; var vc = call.Out[1].Span;
        for (int b = 0; b < at.B; b++)
        {
            qkv.Slice(b * 3 * C + C, C).CopyTo(kc.Slice((b * at.T + pos) * C, C));
            qkv.Slice(b * 3 * C + 2 * C, C).CopyTo(vc.Slice((b * at.T + pos) * C, C));
        }
    }

    /// <summary>sum_d a[d] b[d] (Vector256 with a scalar tail).</summary>
    private static unsafe float DotRow(float* a, float* b, int n)
    {
        int d = 0;
        var acc = Vector256<float>.Zero;
        for (; d + W <= n; d += W) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + d), Vector256.Load(b + d), acc);
        float s = Vector256.Sum(acc);
        for (; d < n; d++) s += a[d] * b[d];
        return s;
    }

    /// <summary>y[d] += a x[d] (Vector256 with a scalar tail).</summary>
    private static unsafe void AxpyRow(float a, float* x, float* y, int n)
    {
        int d = 0;
        var va = Vector256.Create(a);
        for (; d + W <= n; d += W) Vector256.FusedMultiplyAdd(va, Vector256.Load(x + d), Vector256.Load(y + d)).Store(y + d);
        for (; d < n; d++) y[d] += a * x[d];
    }

    public static unsafe void Decode(in OpCall call)
    {
        const string op = "attention_decode";
        var at = call.A<AttentionAttrs>();
        int B = at.B, Tm = at.T, H = at.H;
        int C = call.In[0].Dim(1) / 3, hd = C / H;
        int pos = Pos(call.In[3], Tm, op);
        if ((long)B * C == 0) return;
        var qkv = D(call.In[0]); int qo = (int)call.In[0].Offset;
        var kc = D(call.In[1]); int ko = (int)call.In[1].Offset;
        var vc = D(call.In[2]); int vo = (int)call.In[2].Offset;
        var y = D(call.Out[0]); int yo = (int)call.Out[0].Offset;
        float scale = 1f / MathF.Sqrt(hd);
        int n = pos + 1;
        // One sampling step per call: keep small batches on the calling thread (no task overhead).
        CpuParallel.For(B * H, Math.Max(1, 65536 / Math.Max(1, n * hd)), (s0, e0) =>
        {
            var p = new float[n];
            fixed (float* pq = qkv, pk = kc, pv = vc, py = y, pp = p)
            {
                for (int bh = s0; bh < e0; bh++)
                {
                    int b = bh / H, h = bh % H;
                    float* q = pq + qo + b * 3 * C + h * hd;
                    float* k = pk + ko + b * Tm * C + h * hd;
                    float* v = pv + vo + b * Tm * C + h * hd;
                    float max = float.NegativeInfinity;
                    for (int j = 0; j < n; j++)
                    {
                        float sc = scale * DotRow(q, k + j * C, hd);
                        pp[j] = sc;
                        if (sc > max) max = sc;
                    }
                    float sum = 0;
                    for (int j = 0; j < n; j++) { float e = MathF.Exp(pp[j] - max); pp[j] = e; sum += e; }
                    float* yr = py + yo + b * C + h * hd;
                    new Span<float>(yr, hd).Clear();
                    float inv = 1f / sum;
                    for (int j = 0; j < n; j++) AxpyRow(pp[j] * inv, v + j * C, yr, hd);
                }
            }
        });
    }
}
