// CPU kernels of the vector quantizer: fused nearest-code lookup, straight-through
// backward with the codebook gradient, the VQ loss, the EMA codebook update and the
// code histogram. Every reduction runs in a fixed order, so results are bit-identical
// whatever the thread count.
using System.Buffers;
using System.Numerics;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

internal static class CpuVq
{
    /// <summary>Rows of z scored together against one codebook tile.</summary>
    private const int RowBlock = 16;
    /// <summary>Bytes of codebook per tile: small enough to stay in L1 while a row block scans it.</summary>
    private const int TileBytes = 24 * 1024;

    private static float[] Arr(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    private static (int N, int D) Rows(Tensor t) => (t.Dim(0), t.Dim(1));

    /// <summary>Squared L2 distance of two equal-length vectors (float, SIMD).</summary>
    private static float SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        float s = 0;
        if (Vector.IsHardwareAccelerated && a.Length >= Vector<float>.Count)
        {
            var acc = Vector<float>.Zero;
            for (; i <= a.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var d = new Vector<float>(a[i..]) - new Vector<float>(b[i..]);
                acc += d * d;
            }
            s = Vector.Sum(acc);
        }
        for (; i < a.Length; i++) { float d = a[i] - b[i]; s += d * d; }
        return s;
    }

    /// <summary>vq_lookup: idx[i] = argmin_k ||z_i - C_k||^2 (first on ties), q_i = C_idx[i].</summary>
    public static void Lookup(in OpCall c)
    {
        var (n, d) = Rows(c.In[0]);
        var (k, dc) = Rows(c.In[1]);
        var z = Arr(c.In[0]); int zo = (int)c.In[0].Offset;
        var cb = Arr(c.In[1]); int co = (int)c.In[1].Offset;
        var idx = Arr(c.Out[0]); int io = (int)c.Out[0].Offset;
        var q = Arr(c.Out[1]); int qo = (int)c.Out[1].Offset;
        int tile = Math.Max(1, TileBytes / (4 * Math.Max(1, d)));
        int blocks = (n + RowBlock - 1) / RowBlock;
        long workPerBlock = (long)RowBlock * k * Math.Max(1, d);
        int grain = (int)Math.Max(1, 262144 / Math.Max(1, workPerBlock));
        CpuParallel.For(blocks, grain, (s, e) =>
        {
            Span<float> best = stackalloc float[RowBlock];
            Span<int> arg = stackalloc int[RowBlock];
            for (int b = s; b < e; b++)
            {
                int r0 = b * RowBlock, rows = Math.Min(RowBlock, n - r0);
                best.Fill(float.PositiveInfinity);
                arg.Clear();
                // Distance and running argmin fused over codebook tiles: no N x K matrix.
                for (int t0 = 0; t0 < k; t0 += tile)
                {
                    int t1 = Math.Min(k, t0 + tile);
                    for (int r = 0; r < rows; r++)
                    {
                        var zr = new ReadOnlySpan<float>(z, zo + (r0 + r) * d, d);
                        float bv = best[r]; int ba = arg[r];
                        for (int j = t0; j < t1; j++)
                        {
                            float dist = SquaredDistance(zr, new ReadOnlySpan<float>(cb, co + j * d, d));
                            if (dist < bv) { bv = dist; ba = j; } // strict: ties keep the smallest index
                        }
                        best[r] = bv; arg[r] = ba;
                    }
                }
                for (int r = 0; r < rows; r++)
                {
                    idx[io + r0 + r] = BitConverter.Int32BitsToSingle(arg[r]);
                    Array.Copy(cb, co + arg[r] * d, q, qo + (r0 + r) * d, d);
                }
            }
        });
    }

    /// <summary>
    /// Counting sort of rows by code: rows of code k are order[offsets[k] .. offsets[k+1]) in
    /// increasing row order, so per-code sums have a fixed order. Arrays come from the pool.
    /// </summary>
    private static (int[] Offsets, int[] Order) GroupByCode(float[] idx, int io, int n, int k, string op)
    {
        var offsets = ArrayPool<int>.Shared.Rent(k + 1);
        var order = ArrayPool<int>.Shared.Rent(Math.Max(1, n));
        Array.Clear(offsets, 0, k + 1);
        for (int i = 0; i < n; i++)
        {
            int code = BitConverter.SingleToInt32Bits(idx[io + i]);
            if ((uint)code >= (uint)k)
            {
                ArrayPool<int>.Shared.Return(offsets); ArrayPool<int>.Shared.Return(order);
                throw new ArgumentOutOfRangeException(nameof(idx), $"{op}: index {code} at row {i} is outside [0, {k})");
            }
            offsets[code + 1]++;
        }
        for (int j = 0; j < k; j++) offsets[j + 1] += offsets[j];
        // One write cursor per code, scanning rows in order: a stable counting sort.
        var cursor = ArrayPool<int>.Shared.Rent(k);
        Array.Copy(offsets, cursor, k);
        for (int i = 0; i < n; i++) order[cursor[BitConverter.SingleToInt32Bits(idx[io + i])]++] = i;
        ArrayPool<int>.Shared.Return(cursor);
        return (offsets, order);
    }

    private static void Release((int[] Offsets, int[] Order) g)
    {
        ArrayPool<int>.Shared.Return(g.Offsets);
        ArrayPool<int>.Shared.Return(g.Order);
    }

    /// <summary>
    /// vq_backward: dz = dq + s*beta*2(z-q)/(N D); with CodebookGradient,
    /// dC[k] += s*2*sum_{idx_i=k}(q_i - z_i)/(N D), summed in row order in double.
    /// </summary>
    public static void Backward(in OpCall c)
    {
        var a = c.A<VqBackwardAttrs>();
        var (n, d) = Rows(c.In[0]);
        var z = Arr(c.In[0]); int zo = (int)c.In[0].Offset;
        var q = Arr(c.In[1]); int qo = (int)c.In[1].Offset;
        var dq = Arr(c.In[3]); int dqo = (int)c.In[3].Offset;
        var dz = Arr(c.Out[0]); int dzo = (int)c.Out[0].Offset;
        double nd = Math.Max(1.0, (double)n * d);
        float commit = (float)(a.LossScale * (double)a.Beta * 2.0 / nd);
        int total = n * d;
        CpuParallel.For(total, 16384, (s, e) =>
        {
            for (int i = s; i < e; i++) dz[dzo + i] = dq[dqo + i] + commit * (z[zo + i] - q[qo + i]);
        });
        if (!a.CodebookGradient) return;

        var (k, dk) = Rows(c.Out[1]);
        var dc = Arr(c.Out[1]); int dco = (int)c.Out[1].Offset;
        double g = a.LossScale * 2.0 / nd;
        var groups = GroupByCode(Arr(c.In[2]), (int)c.In[2].Offset, n, k, "vq_backward");
        try
        {
            var (offsets, order) = groups;
            CpuParallel.For(k, Math.Max(1, 4096 / Math.Max(1, d)), (s, e) =>
            {
                var acc = new double[d];
                for (int code = s; code < e; code++)
                {
                    int b = offsets[code], end = offsets[code + 1];
                    if (b == end) continue;
                    Array.Clear(acc);
                    for (int p = b; p < end; p++)
                    {
                        int row = order[p];
                        int zr = zo + row * d, qr = qo + row * d;
                        for (int j = 0; j < d; j++) acc[j] += (double)q[qr + j] - z[zr + j];
                    }
                    int o = dco + code * d;
                    for (int j = 0; j < d; j++) dc[o + j] += (float)(g * acc[j]);
                }
            });
        }
        finally { Release(groups); }
    }

    /// <summary>vq_loss: loss[0] = mean((z - q)^2), double accumulation.</summary>
    public static void Loss(in OpCall c)
    {
        var z = c.In[0]; var q = c.In[1]; var l = c.Out[0];
        double s = CpuReduce.SumSquaredDiff(Arr(z), (int)z.Offset, Arr(q), (int)q.Offset, z.Length);
        Arr(l)[l.Offset] = (float)(s / Math.Max(1, z.Length));
    }

    /// <summary>
    /// vq_ema_update: cluster sizes and embedding sums decay towards this batch's counts and
    /// sums; the codebook becomes embedSum / Laplace-smoothed cluster size.
    /// </summary>
    public static void EmaUpdate(in OpCall c)
    {
        var a = c.A<VqEmaAttrs>();
        var (n, d) = Rows(c.In[0]);
        var (k, dk) = Rows(c.Out[0]);
        var z = Arr(c.In[0]); int zo = (int)c.In[0].Offset;
        var cb = Arr(c.Out[0]); int cbo = (int)c.Out[0].Offset;
        var cs = Arr(c.Out[1]); int cso = (int)c.Out[1].Offset;
        var es = Arr(c.Out[2]); int eso = (int)c.Out[2].Offset;
        double decay = a.Decay, keep = 1.0 - a.Decay, eps = a.Eps;
        var groups = GroupByCode(Arr(c.In[1]), (int)c.In[1].Offset, n, k, "vq_ema_update");
        try
        {
            var (offsets, order) = groups;
            int grain = Math.Max(1, 4096 / Math.Max(1, d));
            CpuParallel.For(k, grain, (s, e) =>
            {
                var acc = new double[d];
                for (int code = s; code < e; code++)
                {
                    int b = offsets[code], end = offsets[code + 1];
                    Array.Clear(acc);
                    for (int p = b; p < end; p++)
                    {
                        int zr = zo + order[p] * d;
                        for (int j = 0; j < d; j++) acc[j] += z[zr + j];
                    }
                    cs[cso + code] = (float)(decay * cs[cso + code] + keep * (end - b));
                    int o = eso + code * d;
                    for (int j = 0; j < d; j++) es[o + j] = (float)(decay * es[o + j] + keep * acc[j]);
                }
            });
            double total = 0;
            for (int code = 0; code < k; code++) total += cs[cso + code];
            double denom = total + k * eps;
            CpuParallel.For(k, grain, (s, e) =>
            {
                for (int code = s; code < e; code++)
                {
                    double nk = (cs[cso + code] + eps) / denom * total;
                    int o = code * d;
                    for (int j = 0; j < d; j++) cb[cbo + o + j] = (float)(es[eso + o + j] / nk);
                }
            });
        }
        finally { Release(groups); }
    }

    /// <summary>code_histogram: counts[k] += #{i : idx_i = k} (exact integer counts added once).</summary>
    public static void Histogram(in OpCall c)
    {
        var idx = c.In[0]; var counts = c.Out[0];
        int n = idx.Length, k = counts.Length;
        var ia = Arr(idx); int io = (int)idx.Offset;
        var ca = Arr(counts); int co = (int)counts.Offset;
        var local = ArrayPool<int>.Shared.Rent(Math.Max(1, k));
        try
        {
            Array.Clear(local, 0, k);
            for (int i = 0; i < n; i++)
            {
                int code = BitConverter.SingleToInt32Bits(ia[io + i]);
                if ((uint)code >= (uint)k) throw new ArgumentOutOfRangeException(nameof(c), $"code_histogram: index {code} at row {i} is outside [0, {k})");
                local[code]++;
            }
            for (int j = 0; j < k; j++) if (local[j] != 0) ca[co + j] += local[j];
        }
        finally { ArrayPool<int>.Shared.Return(local); }
    }
}
