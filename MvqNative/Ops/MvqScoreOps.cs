// The MVQ hypothesis-scoring op family: hypothesis statistics and fused hypothesis scoring with a
// running argmin, with float64 references and conformance cases. CPU kernels:
// Backends/Cpu/Kernels/CpuMvqScore.cs; CUDA: Backends/Cuda/Kernels/CudaMvqScore.cs and
// native/kernels/mvq_score.cu. The other MVQ bottleneck ops are the mvq family (MvqOps.cs).
using System.Runtime.CompilerServices;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Attributes of mvq_score: the chunk [Offset, Offset + Count) of the J hypotheses to score,
/// the LeakyReLU slope of f, and whether U is the identity (grid heads, L1 = L2).
/// </summary>
internal sealed record MvqScoreAttrs(int Offset, int Count, float Slope, bool IdentityMix);

/// <summary>
/// The hypothesis ops of the MVQ bottleneck (docs/model.md, "MVQ bottleneck"); shapes as in
/// <see cref="MvqOps"/>: g [B, L2, D2], masks [B, J] I32, w1 [F, D2], b1 [F], w2 [D1, F], b2 [D1],
/// mix [L1, L2], mixBias [L1, D1], resid [B, L1, D1] = q1 - z1.
/// <list type="bullet">
/// <item>mvq_hidden_stats: in [g, masks, w1, b1], out [mean(F), var(F)] (written): the mean and
/// biased variance of a = w1 (m_j ⊙ g[b, l2]) + b1 over all B*J*L2 rows. One call covers all J
/// (fixed internal blocks, double sums), so the statistics never depend on a chunk size.</item>
/// <item>mvq_score: in [g, masks, w1, b1, bnScale(F), bnShift(F), w2, b2, mix, mixBias, resid],
/// out [bestIndex(B) I32 (read-modify-write), bestDist(B) (read-modify-write), dist(B, J)
/// (columns of the chunk written)]: for j in the chunk, u = a*bnScale + bnShift,
/// f_j = w2 LeakyReLU(u) + b2 per token, e = resid + U f_j (+ mixBias), d_j = mean over (L1, D1)
/// of e^2; then if d_j &lt; bestDist[b]: bestDist = d_j, bestIndex = j (j ascending, strict:
/// ties keep the smaller j). Initialise bestDist = +inf before the first chunk; chunk by chunk
/// gives the same winner as one call. With IdentityMix, mix and mixBias are ignored.</item>
/// </list>
/// </summary>
internal static class MvqScoreOps
{
    public static readonly OpDef HiddenStats = new("mvq_hidden_stats")
    {
        Inputs = [Arg.In("g"), Arg.InInt("masks"), Arg.In("w1"), Arg.In("b1")],
        Outputs = [Arg.Write("mean"), Arg.Write("var")],
        Shapes = HiddenStatsShapes,
        Cpu = CpuMvqScore.HiddenStats,
        Cuda = Backends.Cuda.Kernels.CudaMvqScore.HiddenStats,
        Reference = RefMvqScore.HiddenStats,
        Doc = "g[B,L2,D2], masks[B,J], w1[F,D2], b1[F] -> mean[F], var[F] (biased) of w1(m.g)+b1 over B*J*L2 rows",
        Cases =
        [
            StatsCase("odd", 3, 2, 5, 7, 6),
            StatsCase("size1", 1, 1, 1, 1, 1),
            StatsCase("several blocks", 2, 3, 4, 70, 5),
            StatsCase("d2 32 bit 31", 2, 2, 32, 5, 3, bit31: true),
            StatsCase("many features", 2, 2, 3, 33, 300),
        ],
    };

    public static readonly OpDef Score = new("mvq_score")
    {
        Inputs = [Arg.In("g"), Arg.InInt("masks"), Arg.In("w1"), Arg.In("b1"), Arg.In("bnScale"), Arg.In("bnShift"),
                  Arg.In("w2"), Arg.In("b2"), Arg.InOptional("mix"), Arg.InOptional("mixBias"), Arg.In("resid")],
        Outputs = [Arg.UpdateInt("bestIndex"), Arg.Update("bestDist"), Arg.Write("dist")],
        AttrsType = typeof(MvqScoreAttrs),
        Shapes = ScoreShapes,
        Cpu = CpuMvqScore.Score,
        Cuda = Backends.Cuda.Kernels.CudaMvqScore.Score,
        Reference = RefMvqScore.Score,
        Doc = "fused hypothesis scoring: d[b,j] = mean((resid + U(f(m_j.g)))^2) for a chunk of j, running argmin (ties: smallest j)",
        Cases =
        [
            ScoreCase("mix chunk", 3, 2, 5, 7, 6, 4, 3, 2, 4, identity: false),
            ScoreCase("mix all", 3, 2, 5, 7, 6, 4, 3, 0, 7, identity: false),
            ScoreCase("identity chunk", 2, 3, 4, 9, 5, 3, 3, 5, 4, identity: true),
            ScoreCase("size1", 1, 1, 1, 1, 1, 1, 1, 0, 1, identity: false),
            ScoreCase("identity size1", 1, 1, 1, 1, 1, 1, 1, 0, 1, identity: true),
            ScoreCase("d2 32 bit 31", 2, 2, 32, 6, 4, 3, 1, 1, 5, identity: false, bit31: true),
            // CUDA: 70 hypotheses from offset 3 span three blocks of the scoring grid with a short last one.
            ScoreCase("blocks offset tail", 2, 3, 5, 75, 6, 4, 2, 3, 70, identity: false),
            ScoreCase("identity blocks", 2, 3, 4, 40, 5, 3, 3, 1, 37, identity: true),
            // D1 and F above a warp: several lanes' worth of work per loop, one token per layer-2 pass.
            ScoreCase("wide", 1, 2, 7, 5, 40, 33, 3, 0, 5, identity: false),
            ScoreCase("ties", 2, 2, 6, 70, 5, 3, 2, 0, 70, identity: false, ties: true),
        ],
    };

    private static OpCase StatsCase(string label, int b, int l2, int d2, int j, int f, bool bit31 = false) =>
        new(label, [F(b, l2, d2), I(0, 1 << Math.Min(d2, 20), b, j), F(f, d2), F(f)], [Out(f), Out(f)])
        {
            Prepare = bit31 ? ins => MvqOps.SetBit31(ins[1]) : null,
        };

    private static OpCase ScoreCase(string label, int b, int l2, int d2, int j, int f, int d1, int l1, int offset, int count, bool identity, bool bit31 = false, bool ties = false)
    {
        if (identity) l1 = l2;
        TensorSpec?[] ins =
        [
            F(b, l2, d2), I(0, 1 << Math.Min(d2, 20), b, j), F(f, d2), F(f), new TensorSpec([f], Lo: 0.5f, Hi: 1.5f), F(f),
            F(d1, f), F(d1), identity ? null : F(l1, l2), identity ? null : F(l1, d1), F(b, l1, d1),
        ];
        // bestDist starts in [0, 2): some initial values beat every hypothesis of the chunk, some do not.
        // With ties it starts above every distance, so that the tied hypotheses decide every winner.
        var best = ties ? new TensorSpec([b], Lo: 1e30f, Hi: 1e30f) : new TensorSpec([b], Lo: 0f, Hi: 2f);
        TensorSpec[] outs = [I(0, 3, b), best, Out(b, j)];
        return new OpCase(label, ins, outs, new MvqScoreAttrs(offset, count, 0.2f, identity))
        {
            Tolerance = 1e-10,
            Prepare = bit31 ? x => MvqOps.SetBit31(x[1]) : ties ? x => RepeatWords(x[1], j, 3) : null,
        };
    }

    /// <summary>Each instance's words repeat with period p (equal distances: ties, the smallest j must win).</summary>
    private static void RepeatWords(float[] words, int j, int p)
    {
        for (int i = 0; i < words.Length; i++) if (i % j >= p) words[i] = words[i - p];
    }

    // Typed calls of the ops with many inputs: named parameters instead of positions.

    /// <summary>mvq_hidden_stats by name: mean, var [F] of w1 (m_j ⊙ g) + b1 over all B*J*L2 rows.</summary>
    public static void RunHiddenStats(Backend backend, Tensor g, Tensor masks, Tensor w1, Tensor b1, Tensor mean, Tensor var) =>
        HiddenStats.Run(backend, [g, masks, w1, b1], [mean, var]);

    /// <summary>
    /// mvq_score by name over the chunk of <paramref name="attrs"/>. <paramref name="mix"/> and
    /// <paramref name="mixBias"/> are null exactly when <see cref="MvqScoreAttrs.IdentityMix"/> is set.
    /// </summary>
    public static void RunScore(Backend backend, MvqScoreAttrs attrs, Tensor g, Tensor masks, Tensor w1, Tensor b1, Tensor bnScale, Tensor bnShift,
        Tensor w2, Tensor b2, Tensor? mix, Tensor? mixBias, Tensor resid, Tensor bestIndex, Tensor bestDist, Tensor dist) =>
        // mix and mixBias are optional inputs of the signature: Run accepts null for them.
        Score.Run(backend, [g, masks, w1, b1, bnScale, bnShift, w2, b2, mix!, mixBias!, resid], [bestIndex, bestDist, dist], attrs);

    internal readonly record struct StatsDims(int B, int L2, int D2, int J, int F);

    internal static StatsDims Dims(int[] g, int[] masks, int[] w1)
    {
        if (g.Length != 3) throw new ArgumentException($"g must be [B,L2,D2], got {ShapeText.Of(g)}");
        if (g[2] is < 1 or > 32) throw new ArgumentException($"D2 = {g[2]} must be 1..32 (one mask word)");
        if (masks.Length != 2 || masks[0] != g[0]) throw new ArgumentException($"masks must be [B={g[0]},J], got {ShapeText.Of(masks)}");
        if (w1.Length != 2 || w1[1] != g[2]) throw new ArgumentException($"w1 must be [F,D2={g[2]}], got {ShapeText.Of(w1)}");
        return new StatsDims(g[0], g[1], g[2], masks[1], w1[0]);
    }

    internal static (int D1, int L1) ScoreDims(int[] w2, int[] resid, StatsDims s, MvqScoreAttrs a)
    {
        if (w2.Length != 2 || w2[1] != s.F) throw new ArgumentException($"w2 must be [D1,F={s.F}], got {ShapeText.Of(w2)}");
        if (resid.Length != 3 || resid[0] != s.B || resid[2] != w2[0]) throw new ArgumentException($"resid must be [B={s.B},L1,D1={w2[0]}], got {ShapeText.Of(resid)}");
        if (a.IdentityMix && resid[1] != s.L2) throw new ArgumentException($"an identity mix needs L1 = L2 (got {resid[1]} and {s.L2})");
        if (a.Offset < 0 || a.Count < 0 || a.Offset + a.Count > s.J) throw new ArgumentException($"chunk [{a.Offset}, {a.Offset + a.Count}) outside [0, {s.J})");
        return (w2[0], resid[1]);
    }

    private static void HiddenStatsShapes(in OpCall c)
    {
        var s = Dims(c.In[0].Shape, c.In[1].Shape, c.In[2].Shape);
        ShapeText.Require(c.In[3], "b1", s.F);
        ShapeText.Require(c.Out[0], "mean", s.F);
        ShapeText.Require(c.Out[1], "var", s.F);
    }

    private static void ScoreShapes(in OpCall c)
    {
        var at = c.A<MvqScoreAttrs>();
        var s = Dims(c.In[0].Shape, c.In[1].Shape, c.In[2].Shape);
        var (d1, l1) = ScoreDims(c.In[6].Shape, c.In[10].Shape, s, at);
        ShapeText.Require(c.In[3], "b1", s.F); ShapeText.Require(c.In[4], "bnScale", s.F); ShapeText.Require(c.In[5], "bnShift", s.F);
        ShapeText.Require(c.In[7], "b2", d1);
        if (at.IdentityMix)
        {
            if (c.In[8] is not null || c.In[9] is not null) throw new ArgumentException("an identity mix takes no mix and mixBias (pass null)");
        }
        else
        {
            if (c.In[8] is null || c.In[9] is null) throw new ArgumentException("mix and mixBias are required unless the mix is the identity");
            ShapeText.Require(c.In[8], "mix", l1, s.L2); ShapeText.Require(c.In[9], "mixBias", l1, d1);
        }
        ShapeText.Require(c.Out[0], "bestIndex", s.B); ShapeText.Require(c.Out[1], "bestDist", s.B); ShapeText.Require(c.Out[2], "dist", s.B, s.J);
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(HiddenStats, Score);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 MVQ hypothesis ops: the ground truth.</summary>
internal static class RefMvqScore
{
    private static bool Bit(double word, int i) => ((uint)(int)word >> i & 1) != 0;

    /// <summary>a [L2, F] of hypothesis word w for instance b.</summary>
    private static double[] Hidden(RefCall c, int b, double word, MvqScoreOps.StatsDims s)
    {
        double[] g = c.In[0], w1 = c.In[2], b1 = c.In[3];
        var a = new double[s.L2 * s.F];
        for (int l = 0; l < s.L2; l++)
            for (int k = 0; k < s.F; k++)
            {
                double acc = b1[k];
                for (int i = 0; i < s.D2; i++)
                    if (Bit(word, i)) acc += w1[k * s.D2 + i] * g[(b * s.L2 + l) * s.D2 + i];
                a[l * s.F + k] = acc;
            }
        return a;
    }

    public static void HiddenStats(RefCall c)
    {
        var s = MvqScoreOps.Dims(c.InShapes[0], c.InShapes[1], c.InShapes[2]);
        var sum = new double[s.F]; var sq = new double[s.F];
        for (int b = 0; b < s.B; b++)
            for (int j = 0; j < s.J; j++)
            {
                var a = Hidden(c, b, c.In[1][b * s.J + j], s);
                for (int r = 0; r < s.L2; r++)
                    for (int k = 0; k < s.F; k++) sum[k] += a[r * s.F + k];
            }
        double n = (double)s.B * s.J * s.L2;
        for (int k = 0; k < s.F; k++) sum[k] /= n;
        for (int b = 0; b < s.B; b++)
            for (int j = 0; j < s.J; j++)
            {
                var a = Hidden(c, b, c.In[1][b * s.J + j], s);
                for (int r = 0; r < s.L2; r++)
                    for (int k = 0; k < s.F; k++) { double d = a[r * s.F + k] - sum[k]; sq[k] += d * d; }
            }
        for (int k = 0; k < s.F; k++) { c.Out[0][k] = sum[k]; c.Out[1][k] = sq[k] / n; }
    }

    public static void Score(RefCall c)
    {
        var at = c.A<MvqScoreAttrs>();
        var s = MvqScoreOps.Dims(c.InShapes[0], c.InShapes[1], c.InShapes[2]);
        var (D1, L1) = MvqScoreOps.ScoreDims(c.InShapes[6], c.InShapes[10], s, at);
        double[] scale = c.In[4], shift = c.In[5], w2 = c.In[6], b2 = c.In[7], mix = c.In[8], mb = c.In[9], resid = c.In[10];
        int F = s.F, L2 = s.L2;
        for (int b = 0; b < s.B; b++)
            for (int j = at.Offset; j < at.Offset + at.Count; j++)
            {
                var a = Hidden(c, b, c.In[1][b * s.J + j], s);
                var f = new double[L2 * D1];
                for (int l = 0; l < L2; l++)
                    for (int d = 0; d < D1; d++)
                    {
                        double acc = b2[d];
                        for (int k = 0; k < F; k++)
                        {
                            double u = a[l * F + k] * scale[k] + shift[k];
                            acc += w2[d * F + k] * (u > 0 ? u : at.Slope * u);
                        }
                        f[l * D1 + d] = acc;
                    }
                double sum = 0;
                for (int l = 0; l < L1; l++)
                    for (int d = 0; d < D1; d++)
                    {
                        double e = resid[(b * L1 + l) * D1 + d];
                        if (at.IdentityMix) e += f[l * D1 + d];
                        else
                        {
                            e += mb[l * D1 + d];
                            for (int k = 0; k < L2; k++) e += mix[l * L2 + k] * f[k * D1 + d];
                        }
                        sum += e * e;
                    }
                double dist = sum / (L1 * D1);
                c.Out[2][b * s.J + j] = dist;
                if (dist < c.Out[1][b]) { c.Out[1][b] = dist; c.Out[0][b] = j; }
            }
    }
}
