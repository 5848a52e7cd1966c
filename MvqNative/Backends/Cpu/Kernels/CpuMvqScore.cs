// CPU kernels of the MVQ hypothesis-scoring family (MvqNative/Ops/MvqScoreOps.cs): hypothesis
// statistics and the fused hypothesis scoring with a running argmin.
using System.Buffers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Backends.Cpu;

/// <summary>
/// MVQ hypothesis kernels on the CPU. Hypotheses are processed per instance b (parallel over B) in blocks
/// whose rows [j, l2] go through two SGEMMs (D2 -> F, F -> D1); no [B, J, L1, D1] tensor is ever
/// formed. Every (b, j) result depends only on its own row block (the managed SGEMM sums over k
/// in a fixed order), so chunking never changes a distance, and the double partial sums are
/// combined in a fixed order, so nothing depends on the thread count.
/// </summary>
internal static unsafe class CpuMvqScore
{
    /// <summary>Hypotheses per block in mvq_hidden_stats, at most (fixed: results do not depend on it otherwise).</summary>
    private const int StatsBlock = 32;

    /// <summary>
    /// Rows (hypothesis x token) per block, at most: a thread's scratch is RowBudget * max(D2, F, D1) floats
    /// per buffer (1 MiB at width 64) whatever J, chunk or L2, unless one hypothesis alone has more rows (L2).
    /// A (b, j) result depends only on its own rows, and the statistics add rows in row order, so the
    /// block size changes no bit of any result.
    /// </summary>
    internal const int RowBudget = 4096;

    /// <summary>Hypotheses per block: as many as fit in <see cref="RowBudget"/> rows, at least one, at most <paramref name="max"/>.</summary>
    internal static int HypothesesPerBlock(int l2, int max) => Math.Max(1, Math.Min(max, RowBudget / Math.Max(1, l2)));

    private static float[] D(Tensor t) => ((CpuBuffer)t.Buffer).Data;

    /// <summary>
    /// a[r = jj*L2 + l, :] = w1 (m_{j0+jj} ⊙ g[b, l]) + b1 for jj in [0, jc): the masked rows, one
    /// SGEMM, then the bias. x is scratch [jc*L2, D2], a is [jc*L2, F].
    /// </summary>
    private static void Hidden(float* g, int* words, int jc, int l2, int d2, float* w1, float* b1, int f, float* x, float* a)
    {
        for (int jj = 0; jj < jc; jj++)
        {
            uint w = (uint)words[jj];
            for (int l = 0; l < l2; l++)
            {
                float* src = g + (long)l * d2, dst = x + ((long)jj * l2 + l) * d2;
                for (int i = 0; i < d2; i++) dst[i] = ((w >> i) & 1) != 0 ? src[i] : 0f;
            }
        }
        int rows = checked(jc * l2);
        CpuGemm.Sgemm(false, true, rows, f, d2, 1f, x, d2, w1, d2, 0f, a, f);
        for (long r = 0; r < rows; r++)
        {
            float* ar = a + r * f;
            for (int k = 0; k < f; k++) ar[k] += b1[k];
        }
    }

    public static void HiddenStats(in OpCall c)
    {
        var s = MvqScoreOps.Dims(c.In[0].Shape, c.In[1].Shape, c.In[2].Shape);
        int B = s.B, L2 = s.L2, D2 = s.D2, J = s.J, F = s.F;
        float[] g = D(c.In[0]), w1 = D(c.In[2]), b1 = D(c.In[3]);
        float[] maskBuf = D(c.In[1]); long mko = c.In[1].Offset; // I32 words in the float store, pinned in place (no per-call copy)
        long go = c.In[0].Offset, wo = c.In[2].Offset, bo = c.In[3].Offset;
        var part = new double[B * 2 * F];
        CpuParallel.For(B, 1, (b0, b1e) =>
        {
            int jb = HypothesesPerBlock(L2, Math.Min(StatsBlock, J));
            long rowsMax = (long)jb * L2;
            var x = ArrayPool<float>.Shared.Rent((int)Math.Max(1, rowsMax * D2));
            var a = ArrayPool<float>.Shared.Rent((int)Math.Max(1, rowsMax * F));
            try
            {
                fixed (float* pg = g, pw = w1, pb = b1, px = x, pa = a)
                fixed (float* pmk = maskBuf)
                fixed (double* pp = part)
                    for (int b = b0; b < b1e; b++)
                    {
                        double* sum = pp + b * 2 * F, sq = sum + F;
                        for (int j0 = 0; j0 < J; j0 += jb)
                        {
                            int jc = Math.Min(jb, J - j0);
                            Hidden(pg + go + (long)b * L2 * D2, (int*)(pmk + mko) + (long)b * J + j0, jc, L2, D2, pw + wo, pb + bo, F, px, pa);
                            for (long r = 0; r < (long)jc * L2; r++)
                            {
                                float* ar = pa + r * F;
                                for (int k = 0; k < F; k++) { double v = ar[k]; sum[k] += v; sq[k] += v * v; }
                            }
                        }
                    }
            }
            finally { ArrayPool<float>.Shared.Return(x); ArrayPool<float>.Shared.Return(a); }
        });
        var mean = c.Out[0].Span; var var_ = c.Out[1].Span;
        double n = (double)B * J * L2;
        for (int k = 0; k < F; k++)
        {
            double sm = 0, sq = 0;
            for (int b = 0; b < B; b++) { sm += part[b * 2 * F + k]; sq += part[b * 2 * F + F + k]; }
            double m = n > 0 ? sm / n : 0;
            mean[k] = (float)m;
            var_[k] = (float)(n > 0 ? Math.Max(0, sq / n - m * m) : 0);
        }
    }

    public static void Score(in OpCall c)
    {
        var at = c.A<MvqScoreAttrs>();
        var s = MvqScoreOps.Dims(c.In[0].Shape, c.In[1].Shape, c.In[2].Shape);
        var (d1, l1) = MvqScoreOps.ScoreDims(c.In[6].Shape, c.In[10].Shape, s, at);
        int B = s.B, L2 = s.L2, D2 = s.D2, J = s.J, F = s.F, D1 = d1, L1 = l1;
        if (at.Count == 0) return;
        int j0 = at.Offset, jc = at.Count;
        float slope = at.Slope;
        bool identity = at.IdentityMix;
        float[] g = D(c.In[0]), w1 = D(c.In[2]), b1 = D(c.In[3]), sc = D(c.In[4]), sh = D(c.In[5]), w2 = D(c.In[6]), b2 = D(c.In[7]);
        // mix and mixBias are null for an identity mix.
        float[] mix = identity ? [] : D(c.In[8]), mb = identity ? [] : D(c.In[9]), resid = D(c.In[10]);
        long go = c.In[0].Offset, w1o = c.In[2].Offset, b1o = c.In[3].Offset, sco = c.In[4].Offset, sho = c.In[5].Offset,
             w2o = c.In[6].Offset, b2o = c.In[7].Offset, mo = identity ? 0 : c.In[8].Offset, mbo = identity ? 0 : c.In[9].Offset, ro = c.In[10].Offset;
        float[] maskBuf = D(c.In[1]); long mko = c.In[1].Offset; // I32 words in the float store, pinned in place (no per-call copy)
        var bestIdx = c.Out[0]; var bestDist = c.Out[1]; var dist = c.Out[2];
        float[] bi = D(bestIdx), bd = D(bestDist), dd = D(dist);
        long bio = bestIdx.Offset, bdo = bestDist.Offset, ddo = dist.Offset;
        int jb = HypothesesPerBlock(L2, jc);
        CpuParallel.For(B, 1, (bs, be) =>
        {
            int rowsMax = checked(jb * L2);
            var x = ArrayPool<float>.Shared.Rent(checked(rowsMax * D2));
            var a = ArrayPool<float>.Shared.Rent(checked(rowsMax * F));
            var fo = ArrayPool<float>.Shared.Rent(checked(rowsMax * D1));
            try
            {
                fixed (float* pg = g, pw1 = w1, pb1 = b1, psc = sc, psh = sh, pw2 = w2, pb2 = b2, pmix = mix, pmb = mb, pr = resid)
                fixed (float* px = x, pa = a, pf = fo, pbd = bd, pdd = dd, pbi = bi)
                fixed (float* pmk = maskBuf)
                    for (int b = bs; b < be; b++)
                    for (int k0 = 0; k0 < jc; k0 += jb)
                    {
                        int kc = Math.Min(jb, jc - k0), rows = kc * L2;
                        Hidden(pg + go + (long)b * L2 * D2, (int*)(pmk + mko) + (long)b * J + j0 + k0, kc, L2, D2, pw1 + w1o, pb1 + b1o, F, px, pa);
                        float* scale = psc + sco, shift = psh + sho;
                        for (long r = 0; r < rows; r++)
                        {
                            float* ar = pa + r * F;
                            for (int k = 0; k < F; k++)
                            {
                                float u = ar[k] * scale[k] + shift[k];
                                ar[k] = u > 0 ? u : slope * u;
                            }
                        }
                        CpuGemm.Sgemm(false, true, rows, D1, F, 1f, pa, F, pw2 + w2o, F, 0f, pf, D1);
                        float* bias2 = pb2 + b2o;
                        for (long r = 0; r < rows; r++)
                            for (int d = 0; d < D1; d++) pf[r * D1 + d] += bias2[d];
                        float* rb = pr + ro + (long)b * L1 * D1;
                        int* bestI = (int*)(pbi + bio) + b;
                        float* bestD = pbd + bdo + b;
                        for (int jj = 0; jj < kc; jj++)
                        {
                            float* fj = pf + (long)jj * L2 * D1;
                            double acc = 0;
                            for (int l = 0; l < L1; l++)
                                for (int d = 0; d < D1; d++)
                                {
                                    float e;
                                    if (identity) e = rb[l * D1 + d] + fj[l * D1 + d];
                                    else
                                    {
                                        float m = pmb[mbo + l * D1 + d];
                                        for (int k = 0; k < L2; k++) m += pmix[mo + l * L2 + k] * fj[k * D1 + d];
                                        e = rb[l * D1 + d] + m;
                                    }
                                    acc += (double)e * e;
                                }
                            // Compare the stored float: the same values decide in every chunking.
                            float dj = (float)(acc / (L1 * D1));
                            pdd[ddo + (long)b * J + j0 + k0 + jj] = dj;
                            if (dj < *bestD) { *bestD = dj; *bestI = j0 + k0 + jj; }
                        }
                    }
            }
            finally { ArrayPool<float>.Shared.Return(x); ArrayPool<float>.Shared.Return(a); ArrayPool<float>.Shared.Return(fo); }
        });
    }
}
