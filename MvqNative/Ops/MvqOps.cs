// The MVQ op family: hypothesis statistics, fused hypothesis scoring with a running argmin,
// winner-word selection, mask application, frozen BatchNorm (forward, backward, fold, running
// update) and token mixing (forward, backward), with float64 references and conformance cases.
// CPU kernels: Backends/Cpu/Kernels/CpuMvq.cs.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
public sealed record MvqScoreAttrs(int Offset, int Count, float Slope, bool IdentityMix);

/// <summary>Attributes of the BatchNorm helpers: eps, momentum and the row count n of the batch statistics.</summary>
public sealed record BatchNormAttrs(float Eps = 1e-5f, float Momentum = 0.1f, long Count = 1);

/// <summary>
/// Ops of the MVQ bottleneck (docs/model.md, "MVQ bottleneck"). Shapes: g [B, L2, D2] (the
/// normalised secondary tokens), masks [B, J] I32 (D2-bit words, bit i set = keep dim i, read
/// unsigned), w1 [F, D2], b1 [F], w2 [D1, F], b2 [D1], mix [L1, L2], mixBias [L1, D1],
/// resid [B, L1, D1] = q1 - z1.
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
/// <item>mvq_select_words: in [masks(B, J), index(B)], out [words(B)]: words[b] = masks[b, index[b]].</item>
/// <item>mask_apply: in [g(B, L, D2), words(B) I32], out [y]: y = g with the cleared bits' dims
/// zeroed. Linear in g with a 0/1 diagonal, so its backward is the same op applied to dy.</item>
/// <item>batchnorm_frozen_forward: in [a(N, F), mean, rstd, gamma, beta], out [y]:
/// y = (a - mean) rstd gamma + beta, statistics given (stop-gradient).</item>
/// <item>batchnorm_frozen_backward: in [a, mean, rstd, gamma, dy], out [da (=), dgamma (+=), dbeta (+=)]:
/// da = dy rstd gamma, dgamma += sum dy (a - mean) rstd, dbeta += sum dy.</item>
/// <item>batchnorm_fold: in [mean, var, gamma, beta], out [rstd, scale, shift]:
/// rstd = 1/sqrt(var + eps), scale = gamma rstd, shift = beta - mean scale.</item>
/// <item>batchnorm_running_update: in [mean, var], out [running_mean, running_var] (updated in
/// place): rm = (1 - momentum) rm + momentum mean, rv = (1 - momentum) rv + momentum var n/(n-1).</item>
/// <item>token_mix_forward: in [f(B, L2, D), M(L1, L2), bias(L1, D)], out [y(B, L1, D)]:
/// y[b, l1] = sum_l2 M[l1, l2] f[b, l2] + bias[l1].</item>
/// <item>token_mix_backward: in [f, M, dy], out [df (=), dM (+=), dbias (+=)].</item>
/// </list>
/// </summary>
public static class MvqOps
{
    public static readonly OpDef HiddenStats = new("mvq_hidden_stats")
    {
        Inputs = [Arg.In("g"), Arg.InInt("masks"), Arg.In("w1"), Arg.In("b1")],
        Outputs = [Arg.Write("mean"), Arg.Write("var")],
        Shapes = HiddenStatsShapes,
        Cpu = CpuMvq.HiddenStats,
        Cuda = Backends.Cuda.Kernels.CudaMvqScore.HiddenStats,
        Reference = RefMvq.HiddenStats,
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
        Cpu = CpuMvq.Score,
        Cuda = Backends.Cuda.Kernels.CudaMvqScore.Score,
        Reference = RefMvq.Score,
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

    public static readonly OpDef SelectWords = new("mvq_select_words")
    {
        Inputs = [Arg.InInt("masks"), Arg.InInt("index")],
        Outputs = [Arg.WriteInt("words")],
        Shapes = (in OpCall c) =>
        {
            var (b, _) = ShapeText.Matrix(c.In[0], "masks", "B", "J");
            ShapeText.Require(c.In[1], "index", b);
            ShapeText.Require(c.Out[0], "words", b);
        },
        Cpu = CpuMvq.SelectWords,
        Cuda = Backends.Cuda.Kernels.CudaMvq.SelectWords,
        Reference = r => { int J = r.InShapes[0][1]; for (int b = 0; b < r.In[1].Length; b++) r.Out[0][b] = r.In[0][b * J + (int)r.In[1][b]]; },
        Doc = "words[b] = masks[b, index[b]]",
        Cases = [new OpCase("odd", [I(0, 1 << 20, 5, 7), I(0, 7, 5)], [I(0, 1, 5)]) { Tolerance = 0 },
                 new OpCase("size1", [I(0, 2, 1, 1), I(0, 1, 1)], [I(0, 1, 1)]) { Tolerance = 0 }],
    };

    public static readonly OpDef MaskApply = new("mask_apply")
    {
        Inputs = [Arg.In("g"), Arg.InInt("words")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) =>
        {
            MaskDims(c.In[0].Shape, c.In[1].Shape);
            ShapeText.SameShape(c.Out[0], "y", c.In[0], "g");
        },
        Cpu = CpuMvq.MaskApply,
        Cuda = Backends.Cuda.Kernels.CudaMvq.MaskApply,
        Reference = RefMvq.MaskApply,
        Backward = "mask_apply",
        Doc = "y[b,l,i] = g[b,l,i] if bit i of words[b] else 0 (its own backward)",
        Cases = [new OpCase("odd", [F(3, 5, 7), I(0, 1 << 7, 3)], [Out(3, 5, 7)]) { Tolerance = 0 },
                 new OpCase("size1", [F(1, 1, 1), I(0, 2, 1)], [Out(1, 1, 1)]) { Tolerance = 0 },
                 new OpCase("d2 32 bit 31", [F(2, 3, 32), I(0, 1 << 20, 2)], [Out(2, 3, 32)]) { Tolerance = 0, Prepare = ins => SetBit31(ins[1]) }],
    };

    public static readonly OpDef BnFrozenForward = new("batchnorm_frozen_forward")
    {
        Inputs = [Arg.In("a"), Arg.In("mean"), Arg.In("rstd"), Arg.In("gamma"), Arg.In("beta")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) =>
        {
            int f = Features(c.In[1], "mean");
            Rows(c.In[0], f);
            ShapeText.Require(c.In[2], "rstd", f); ShapeText.Require(c.In[3], "gamma", f); ShapeText.Require(c.In[4], "beta", f);
            ShapeText.SameShape(c.Out[0], "y", c.In[0], "a");
        },
        Cpu = CpuMvq.BnFrozenForward,
        Cuda = Backends.Cuda.Kernels.CudaMvq.BnFrozenForward,
        Reference = RefMvq.BnFrozenForward,
        Backward = "batchnorm_frozen_backward",
        Doc = "y = (a - mean) * rstd * gamma + beta, statistics given (stop-gradient)",
        Cases = [new OpCase("odd", [F(7, 5), F(5), new TensorSpec([5], Lo: 0.5f, Hi: 2f), F(5), F(5)], [Out(7, 5)]),
                 // One element whose result can nearly cancel: its float rounding is all of the norm.
                 new OpCase("size1", [F(1, 1), F(1), F(1), F(1), F(1)], [Out(1, 1)]) { Tolerance = 1e-6 }],
    };

    public static readonly OpDef BnFrozenBackward = new("batchnorm_frozen_backward")
    {
        Inputs = [Arg.In("a"), Arg.In("mean"), Arg.In("rstd"), Arg.In("gamma"), Arg.In("dy")],
        Outputs = [Arg.Write("da"), Arg.Acc("dgamma"), Arg.Acc("dbeta")],
        Shapes = (in OpCall c) =>
        {
            int f = Features(c.In[1], "mean");
            Rows(c.In[0], f);
            ShapeText.Require(c.In[2], "rstd", f); ShapeText.Require(c.In[3], "gamma", f);
            ShapeText.SameShape(c.In[4], "dy", c.In[0], "a");
            ShapeText.SameShape(c.Out[0], "da", c.In[0], "a");
            ShapeText.Require(c.Out[1], "dgamma", f); ShapeText.Require(c.Out[2], "dbeta", f);
        },
        Cpu = CpuMvq.BnFrozenBackward,
        Cuda = Backends.Cuda.Kernels.CudaMvq.BnFrozenBackward,
        Reference = RefMvq.BnFrozenBackward,
        Doc = "da = dy*rstd*gamma (=), dgamma += sum dy*(a-mean)*rstd, dbeta += sum dy",
        Cases = [new OpCase("odd", [F(7, 5), F(5), new TensorSpec([5], Lo: 0.5f, Hi: 2f), F(5), F(7, 5)], [Out(7, 5), F(5), F(5)]),
                 new OpCase("size1", [F(1, 1), F(1), F(1), F(1), F(1, 1)], [Out(1, 1), F(1), F(1)]),
                 new OpCase("many rows", [F(300, 3), F(3), new TensorSpec([3], Lo: 0.5f, Hi: 2f), F(3), F(300, 3)], [Out(300, 3), F(3), F(3)])],
    };

    public static readonly OpDef BnFold = new("batchnorm_fold")
    {
        Inputs = [Arg.In("mean"), Arg.In("var"), Arg.In("gamma"), Arg.In("beta")],
        Outputs = [Arg.Write("rstd"), Arg.Write("scale"), Arg.Write("shift")],
        AttrsType = typeof(BatchNormAttrs),
        Shapes = (in OpCall c) =>
        {
            int f = Features(c.In[0], "mean");
            ShapeText.Require(c.In[1], "var", f); ShapeText.Require(c.In[2], "gamma", f); ShapeText.Require(c.In[3], "beta", f);
            ShapeText.Require(c.Out[0], "rstd", f); ShapeText.Require(c.Out[1], "scale", f); ShapeText.Require(c.Out[2], "shift", f);
        },
        Cpu = CpuMvq.BnFold,
        Cuda = Backends.Cuda.Kernels.CudaMvq.BnFold,
        Reference = r =>
        {
            var a = r.A<BatchNormAttrs>();
            for (int k = 0; k < r.In[0].Length; k++)
            {
                double rs = 1 / Math.Sqrt(r.In[1][k] + a.Eps);
                r.Out[0][k] = rs; r.Out[1][k] = r.In[2][k] * rs; r.Out[2][k] = r.In[3][k] - r.In[0][k] * r.In[2][k] * rs;
            }
        },
        Doc = "rstd = 1/sqrt(var+eps), scale = gamma*rstd, shift = beta - mean*scale",
        Cases = [new OpCase("odd", [F(7), new TensorSpec([7], Lo: 0f, Hi: 3f), F(7), F(7)], [Out(7), Out(7), Out(7)], new BatchNormAttrs()),
                 new OpCase("size1", [F(1), new TensorSpec([1], Lo: 0f, Hi: 1f), F(1), F(1)], [Out(1), Out(1), Out(1)], new BatchNormAttrs())],
    };

    public static readonly OpDef BnRunningUpdate = new("batchnorm_running_update")
    {
        Inputs = [Arg.In("mean"), Arg.In("var")],
        Outputs = [Arg.Update("runningMean"), Arg.Update("runningVar")],
        AttrsType = typeof(BatchNormAttrs),
        Shapes = (in OpCall c) =>
        {
            int f = Features(c.In[0], "mean");
            ShapeText.Require(c.In[1], "var", f);
            ShapeText.Require(c.Out[0], "runningMean", f); ShapeText.Require(c.Out[1], "runningVar", f);
        },
        Cpu = CpuMvq.BnRunningUpdate,
        Cuda = Backends.Cuda.Kernels.CudaMvq.BnRunningUpdate,
        Reference = r =>
        {
            var a = r.A<BatchNormAttrs>();
            double unbias = a.Count > 1 ? (double)a.Count / (a.Count - 1) : 1.0;
            for (int k = 0; k < r.In[0].Length; k++)
            {
                r.Out[0][k] = (1 - (double)a.Momentum) * r.Out[0][k] + a.Momentum * r.In[0][k];
                r.Out[1][k] = (1 - (double)a.Momentum) * r.Out[1][k] + a.Momentum * r.In[1][k] * unbias;
            }
        },
        Doc = "rm = (1-m) rm + m mean, rv = (1-m) rv + m var n/(n-1) (in place)",
        Cases = [new OpCase("odd", [F(7), new TensorSpec([7], Lo: 0f, Hi: 3f)], [F(7), F(7)], new BatchNormAttrs(Count: 13)),
                 new OpCase("size1 n1", [F(1), F(1)], [F(1), F(1)], new BatchNormAttrs(Count: 1))],
    };

    public static readonly OpDef TokenMixForward = new("token_mix_forward")
    {
        Inputs = [Arg.In("f"), Arg.In("M"), Arg.In("bias")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) => TokenMixShapes(c, backward: false),
        Cpu = CpuMvq.TokenMixForward,
        Cuda = Backends.Cuda.Kernels.CudaMvq.TokenMixForward,
        Reference = RefMvq.TokenMixForward,
        Backward = "token_mix_backward",
        Doc = "y[b,l1,:] = sum_l2 M[l1,l2] f[b,l2,:] + bias[l1,:]",
        Cases = [new OpCase("odd", [F(3, 2, 5), F(4, 2), F(4, 5)], [Out(3, 4, 5)]),
                 new OpCase("size1", [F(1, 1, 1), F(1, 1), F(1, 1)], [Out(1, 1, 1)]),
                 new OpCase("many to one", [F(2, 7, 3), F(1, 7), F(1, 3)], [Out(2, 1, 3)])],
    };

    public static readonly OpDef TokenMixBackward = new("token_mix_backward")
    {
        Inputs = [Arg.In("f"), Arg.In("M"), Arg.In("dy")],
        Outputs = [Arg.Write("df"), Arg.Acc("dM"), Arg.Acc("dbias")],
        Shapes = (in OpCall c) => TokenMixShapes(c, backward: true),
        Cpu = CpuMvq.TokenMixBackward,
        Cuda = Backends.Cuda.Kernels.CudaMvq.TokenMixBackward,
        Reference = RefMvq.TokenMixBackward,
        Doc = "df = M^T dy (=), dM += sum_{b,d} dy f, dbias += sum_b dy",
        Cases = [new OpCase("odd", [F(3, 2, 5), F(4, 2), F(3, 4, 5)], [Out(3, 2, 5), F(4, 2), F(4, 5)]),
                 new OpCase("size1", [F(1, 1, 1), F(1, 1), F(1, 1, 1)], [Out(1, 1, 1), F(1, 1), F(1, 1)]),
                 new OpCase("long sums", [F(300, 2, 3), F(3, 2), F(300, 3, 3)], [Out(300, 2, 3), F(3, 2), F(3, 3)])],
    };

    private static OpCase StatsCase(string label, int b, int l2, int d2, int j, int f, bool bit31 = false) =>
        new(label, [F(b, l2, d2), I(0, 1 << Math.Min(d2, 20), b, j), F(f, d2), F(f)], [Out(f), Out(f)])
        {
            Prepare = bit31 ? ins => SetBit31(ins[1]) : null,
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
            Prepare = bit31 ? x => SetBit31(x[1]) : ties ? x => RepeatWords(x[1], j, 3) : null,
        };
    }

    /// <summary>Each instance's words repeat with period p (equal distances: ties, the smallest j must win).</summary>
    private static void RepeatWords(float[] words, int j, int p)
    {
        for (int i = 0; i < words.Length; i++) if (i % j >= p) words[i] = words[i - p];
    }

    /// <summary>Sets bit 31 of every other word (a D2 = 32 mask reads as a negative I32).</summary>
    private static void SetBit31(float[] words)
    {
        var w = MemoryMarshal.Cast<float, int>(words.AsSpan());
        for (int i = 0; i < w.Length; i += 2) w[i] |= int.MinValue;
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

    /// <summary>batchnorm_frozen_forward by name: y = (a - mean) rstd gamma + beta.</summary>
    public static void RunBnFrozenForward(Backend backend, Tensor a, Tensor mean, Tensor rstd, Tensor gamma, Tensor beta, Tensor y) =>
        BnFrozenForward.Run(backend, [a, mean, rstd, gamma, beta], [y]);

    /// <summary>batchnorm_frozen_backward by name: da written, dgamma and dbeta accumulated.</summary>
    public static void RunBnFrozenBackward(Backend backend, Tensor a, Tensor mean, Tensor rstd, Tensor gamma, Tensor dy, Tensor da, Tensor dgamma, Tensor dbeta) =>
        BnFrozenBackward.Run(backend, [a, mean, rstd, gamma, dy], [da, dgamma, dbeta]);

    /// <summary>batchnorm_fold by name: rstd, scale, shift from the statistics and the affine parameters.</summary>
    public static void RunBnFold(Backend backend, BatchNormAttrs attrs, Tensor mean, Tensor var, Tensor gamma, Tensor beta, Tensor rstd, Tensor scale, Tensor shift) =>
        BnFold.Run(backend, [mean, var, gamma, beta], [rstd, scale, shift], attrs);

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

    /// <summary>Rows of a [N, F] input whose last dimension is the feature count.</summary>
    internal static int Rows(Tensor a, int f)
    {
        if (f < 1 || a.Rank < 1 || a.Dim(-1) != f) throw new ArgumentException($"a {ShapeText.Of(a)} does not end in {f} features");
        return a.Length / f;
    }

    internal static (int B, int L, int D2) MaskDims(int[] g, int[] words)
    {
        if (words.Length != 1) throw new ArgumentException($"words must be [B], got {ShapeText.Of(words)}");
        if (g.Length != 3 || g[0] != words[0]) throw new ArgumentException($"g must be [B={words[0]},L,D2], got {ShapeText.Of(g)}");
        if (g[2] is < 1 or > 32) throw new ArgumentException($"D2 = {g[2]} must be 1..32");
        return (g[0], g[1], g[2]);
    }

    internal static (int B, int L2, int D, int L1) MixDims(int[] f, int[] m)
    {
        if (f.Length != 3 || m.Length != 2 || m[1] != f[1]) throw new ArgumentException($"f must be [B,L2,D] and M [L1,L2], got {ShapeText.Of(f)} and {ShapeText.Of(m)}");
        return (f[0], f[1], f[2], m[0]);
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

    /// <summary>F of a batchnorm helper: the length of its first [F] vector.</summary>
    private static int Features(Tensor t, string name) => ShapeText.Vector(t, name, "F");

    private static void TokenMixShapes(in OpCall c, bool backward)
    {
        var (b, l2, d, l1) = MixDims(c.In[0].Shape, c.In[1].Shape);
        if (backward)
        {
            ShapeText.Require(c.In[2], "dy", b, l1, d);
            ShapeText.Require(c.Out[0], "df", b, l2, d);
            ShapeText.Require(c.Out[1], "dM", l1, l2);
            ShapeText.Require(c.Out[2], "dbias", l1, d);
        }
        else
        {
            ShapeText.Require(c.In[2], "bias", l1, d);
            ShapeText.Require(c.Out[0], "y", b, l1, d);
        }
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(HiddenStats, Score, SelectWords, MaskApply, BnFrozenForward, BnFrozenBackward,
        BnFold, BnRunningUpdate, TokenMixForward, TokenMixBackward);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 MVQ ops: the ground truth.</summary>
internal static class RefMvq
{
    private static bool Bit(double word, int i) => ((uint)(int)word >> i & 1) != 0;

    /// <summary>a [L2, F] of hypothesis word w for instance b.</summary>
    private static double[] Hidden(RefCall c, int b, double word, MvqOps.StatsDims s)
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
        var s = MvqOps.Dims(c.InShapes[0], c.InShapes[1], c.InShapes[2]);
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
        var s = MvqOps.Dims(c.InShapes[0], c.InShapes[1], c.InShapes[2]);
        var (D1, L1) = MvqOps.ScoreDims(c.InShapes[6], c.InShapes[10], s, at);
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

    public static void MaskApply(RefCall c)
    {
        var (B, L, D2) = MvqOps.MaskDims(c.InShapes[0], c.InShapes[1]);
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L; l++)
                for (int i = 0; i < D2; i++)
                {
                    int o = (b * L + l) * D2 + i;
                    c.Out[0][o] = Bit(c.In[1][b], i) ? c.In[0][o] : 0;
                }
    }

    public static void BnFrozenForward(RefCall c)
    {
        int F = c.In[1].Length, N = c.In[0].Length / F;
        for (int r = 0; r < N; r++)
            for (int k = 0; k < F; k++)
                c.Out[0][r * F + k] = c.In[0][r * F + k] * (c.In[3][k] * c.In[2][k]) + (c.In[4][k] - c.In[1][k] * (c.In[3][k] * c.In[2][k]));
    }

    public static void BnFrozenBackward(RefCall c)
    {
        int F = c.In[1].Length, N = c.In[0].Length / F;
        for (int r = 0; r < N; r++)
            for (int k = 0; k < F; k++)
            {
                int i = r * F + k;
                double dy = c.In[4][i], xhat = (c.In[0][i] - c.In[1][k]) * c.In[2][k];
                c.Out[0][i] = dy * c.In[2][k] * c.In[3][k];
                c.Out[1][k] += dy * xhat;
                c.Out[2][k] += dy;
            }
    }

    public static void TokenMixForward(RefCall c)
    {
        var (B, L2, D, L1) = MvqOps.MixDims(c.InShapes[0], c.InShapes[1]);
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L1; l++)
                for (int d = 0; d < D; d++)
                {
                    double acc = c.In[2][l * D + d];
                    for (int k = 0; k < L2; k++) acc += c.In[1][l * L2 + k] * c.In[0][(b * L2 + k) * D + d];
                    c.Out[0][(b * L1 + l) * D + d] = acc;
                }
    }

    public static void TokenMixBackward(RefCall c)
    {
        var (B, L2, D, L1) = MvqOps.MixDims(c.InShapes[0], c.InShapes[1]);
        double[] f = c.In[0], m = c.In[1], dy = c.In[2];
        Array.Clear(c.Out[0]);
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L1; l++)
                for (int d = 0; d < D; d++)
                {
                    double g = dy[(b * L1 + l) * D + d];
                    c.Out[2][l * D + d] += g;
                    for (int k = 0; k < L2; k++)
                    {
                        c.Out[0][(b * L2 + k) * D + d] += m[l * L2 + k] * g;
                        c.Out[1][l * L2 + k] += g * f[(b * L2 + k) * D + d];
                    }
                }
    }
}
