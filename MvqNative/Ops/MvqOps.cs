// The MVQ op family: winner-word selection, mask application, frozen BatchNorm (forward,
// backward, fold, running update) and token mixing (forward, backward), with float64 references
// and conformance cases. CPU kernels: Backends/Cpu/Kernels/CpuMvq.cs; CUDA:
// Backends/Cuda/Kernels/CudaMvq.cs and native/kernels/mvq.cu. The hypothesis statistics and
// scoring are the mvq_score family (MvqScoreOps.cs).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of the BatchNorm helpers: eps, momentum and the row count n of the batch statistics.</summary>
internal sealed record BatchNormAttrs(float Eps = 1e-5f, float Momentum = 0.1f, long Count = 1);

/// <summary>
/// Ops of the MVQ bottleneck (docs/model.md, "MVQ bottleneck"). Shapes: g [B, L2, D2] (the
/// normalised secondary tokens), masks [B, J] I32 (D2-bit words, bit i set = keep dim i, read
/// unsigned), w1 [F, D2], b1 [F], w2 [D1, F], b2 [D1], mix [L1, L2], mixBias [L1, D1],
/// resid [B, L1, D1] = q1 - z1.
/// <list type="bullet">
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
internal static class MvqOps
{
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
        Grad = GradSpec.By("mask_apply", [GradArg.Dy(0), GradArg.In(1)], 0),
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
        Grad = GradSpec.By("batchnorm_frozen_backward", [GradArg.In(0), GradArg.In(1), GradArg.In(2), GradArg.In(3), GradArg.Dy(0)], 0, 3, 4),
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
        Grad = GradSpec.By("token_mix_backward", [GradArg.In(0), GradArg.In(1), GradArg.Dy(0)], 0, 1, 2),
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

    /// <summary>Sets bit 31 of every other word (a D2 = 32 mask reads as a negative I32).</summary>
    internal static void SetBit31(float[] words)
    {
        var w = MemoryMarshal.Cast<float, int>(words.AsSpan());
        for (int i = 0; i < w.Length; i += 2) w[i] |= int.MinValue;
    }

    // Typed calls of the ops with many inputs: named parameters instead of positions.

    /// <summary>batchnorm_frozen_forward by name: y = (a - mean) rstd gamma + beta.</summary>
    public static void RunBnFrozenForward(Backend backend, Tensor a, Tensor mean, Tensor rstd, Tensor gamma, Tensor beta, Tensor y) =>
        BnFrozenForward.Run(backend, [a, mean, rstd, gamma, beta], [y]);

    /// <summary>batchnorm_frozen_backward by name: da written, dgamma and dbeta accumulated.</summary>
    public static void RunBnFrozenBackward(Backend backend, Tensor a, Tensor mean, Tensor rstd, Tensor gamma, Tensor dy, Tensor da, Tensor dgamma, Tensor dbeta) =>
        BnFrozenBackward.Run(backend, [a, mean, rstd, gamma, dy], [da, dgamma, dbeta]);

    /// <summary>batchnorm_fold by name: rstd, scale, shift from the statistics and the affine parameters.</summary>
    public static void RunBnFold(Backend backend, BatchNormAttrs attrs, Tensor mean, Tensor var, Tensor gamma, Tensor beta, Tensor rstd, Tensor scale, Tensor shift) =>
        BnFold.Run(backend, [mean, var, gamma, beta], [rstd, scale, shift], attrs);

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
    internal static void Register() => OpRegistry.Add(SelectWords, MaskApply, BnFrozenForward, BnFrozenBackward,
        BnFold, BnRunningUpdate, TokenMixForward, TokenMixBackward);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 MVQ ops: the ground truth.</summary>
internal static class RefMvq
{
    private static bool Bit(double word, int i) => ((uint)(int)word >> i & 1) != 0;

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
