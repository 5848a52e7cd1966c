// Group normalisation ops: group_norm_forward / group_norm_backward with their float64 reference.
using System.Runtime.CompilerServices;
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Tensors;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of the group norm ops: number of groups (divides C) and the variance epsilon.</summary>
internal sealed record GroupNormAttrs(int Groups, float Eps = 1e-5f);

/// <summary>
/// Group normalisation (PyTorch's GroupNorm). x [B, C, S...] (rank >= 2; S... may be empty),
/// channels split into G groups of C/G; statistics over each (sample, group): its channels
/// and all spatial positions, biased variance.
/// forward: in [x, gamma(C), beta(C)], out [y (x's shape), mean(B*G), rstd(B*G)],
///   y = (x - mean) * rstd * gamma[c] + beta[c], rstd = 1 / sqrt(var + eps).
/// backward: in [x, gamma, mean, rstd, dy], out [dx (=), dgamma(C) (+=), dbeta(C) (+=)],
///   xhat = (x - mean) rstd, dx = rstd (gamma dy - mean_g(gamma dy) - xhat mean_g(gamma dy xhat)),
///   dgamma += sum_{b,s} dy xhat, dbeta += sum_{b,s} dy.
/// </summary>
internal static class GroupNormOps
{
    public static readonly OpDef Forward = new("group_norm_forward")
    {
        Inputs = [Arg.In("x"), Arg.In("gamma"), Arg.In("beta")],
        Outputs = [Arg.Write("y"), Arg.Write("mean"), Arg.Write("rstd")],
        AttrsType = typeof(GroupNormAttrs),
        Shapes = (in OpCall c) =>
        {
            var (b, ch, _) = Dims(c.In[0].Shape, c.A<GroupNormAttrs>().Groups);
            int bg = b * c.A<GroupNormAttrs>().Groups;
            ShapeText.Require(c.In[1], "gamma", ch); ShapeText.Require(c.In[2], "beta", ch);
            ShapeText.SameShape(c.Out[0], "y", c.In[0], "x");
            ShapeText.Require(c.Out[1], "mean", bg); ShapeText.Require(c.Out[2], "rstd", bg);
        },
        Cpu = CpuGroupNorm.Forward,
        Cuda = Backends.Cuda.Kernels.CudaGroupNorm.Forward,
        Reference = RefGroupNorm.Forward,
        Grad = GradSpec.By("group_norm_backward", [GradArg.In(0), GradArg.In(1), GradArg.Out(1), GradArg.Out(2), GradArg.Dy(0)], 0, 1, 2),
        Doc = "x[B,C,S..], gamma[C], beta[C] -> y = (x-mean)*rstd*gamma+beta, mean[B*G], rstd[B*G] (stats per sample and group, biased var)",
        Cases =
        [
            FwdCase("g2 rank4 odd", [3, 6, 5, 7], 2),
            FwdCase("g1 rank3", [2, 5, 9], 1),
            FwdCase("gC rank4", [2, 3, 3, 5], 3),
            FwdCase("g1 rank2", [4, 7], 1),
            FwdCase("gC rank2 one element", [3, 5], 5),
            FwdCase("size1", [1, 1, 1, 1], 1),
            // CUDA: a group larger than one block of 256 threads (strided loops and tails).
            FwdCase("g2 large spatial", [2, 4, 20, 17], 2),
            // A large offset checks that the statistics do not lose precision to cancellation.
            new OpCase("g2 offset mean", [new TensorSpec([2, 4, 3, 3], Lo: 100f, Hi: 101f), F(4), F(4)], [Out(2, 4, 3, 3), Out(4), Out(4)], new GroupNormAttrs(2)),
        ],
    };

    public static readonly OpDef BackwardOp = new("group_norm_backward")
    {
        Inputs = [Arg.In("x"), Arg.In("gamma"), Arg.In("mean"), Arg.In("rstd"), Arg.In("dy")],
        Outputs = [Arg.Write("dx"), Arg.Acc("dgamma"), Arg.Acc("dbeta")],
        AttrsType = typeof(GroupNormAttrs),
        Shapes = (in OpCall c) =>
        {
            var (b, ch, _) = Dims(c.In[0].Shape, c.A<GroupNormAttrs>().Groups);
            int bg = b * c.A<GroupNormAttrs>().Groups;
            ShapeText.Require(c.In[1], "gamma", ch);
            ShapeText.Require(c.In[2], "mean", bg); ShapeText.Require(c.In[3], "rstd", bg);
            ShapeText.SameShape(c.In[4], "dy", c.In[0], "x");
            ShapeText.SameShape(c.Out[0], "dx", c.In[0], "x");
            ShapeText.Require(c.Out[1], "dgamma", ch); ShapeText.Require(c.Out[2], "dbeta", ch);
        },
        Cpu = CpuGroupNorm.Backward,
        Cuda = Backends.Cuda.Kernels.CudaGroupNorm.Backward,
        Reference = RefGroupNorm.Backward,
        Doc = "x, gamma, mean, rstd, dy -> dx (=), dgamma (+=), dbeta (+=)",
        Cases =
        [
            BwdCase("g2 rank4 odd", [3, 6, 5, 7], 2),
            BwdCase("g1 rank3", [2, 5, 9], 1),
            BwdCase("gC rank4", [2, 3, 3, 5], 3),
            BwdCase("g1 rank2", [4, 7], 1),
            BwdCase("gC rank2 one element", [3, 5], 5),
            BwdCase("size1", [1, 1, 1], 1),
            BwdCase("g2 large spatial", [2, 4, 20, 17], 2),
        ],
    };

    /// <summary>group_norm_backward by name: dx written, dgamma and dbeta accumulated.</summary>
    public static void RunBackward(Backend backend, GroupNormAttrs attrs, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta) =>
        BackwardOp.Run(backend, [x, gamma, mean, rstd, dy], [dx, dgamma, dbeta], attrs);

    /// <summary>Batch, channels and spatial size of x [B, C, S...], checked against the group count.</summary>
    internal static (int B, int C, int S) Dims(int[] shape, int groups)
    {
        if (shape.Length < 2) throw new ArgumentException($"x must be [B,C,...] (rank >= 2), got {ShapeText.Of(shape)}");
        int b = shape[0], c = shape[1], s = 1;
        for (int i = 2; i < shape.Length; i++) s *= shape[i];
        if (groups <= 0 || c % groups != 0) throw new ArgumentException($"{c} channels are not divisible into {groups} groups");
        return (b, c, s);
    }

    private static OpCase FwdCase(string label, int[] x, int groups)
    {
        int c = x[1], bg = x[0] * groups;
        return new OpCase(label, [F(x), F(c), F(c)], [Out(x), Out(bg), Out(bg)], new GroupNormAttrs(groups));
    }

    /// <summary>A backward case whose mean/rstd inputs are the true statistics of its x.</summary>
    private static OpCase BwdCase(string label, int[] x, int groups)
    {
        int c = x[1], bg = x[0] * groups;
        var attrs = new GroupNormAttrs(groups);
        return new OpCase(label, [F(x), F(c), F(bg), F(bg), F(x)], [Out(x), F(c), F(c)], attrs)
        {
            Prepare = ins => RefGroupNorm.Statistics(ins[0], x, attrs, ins[2], ins[3]),
        };
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 group norm.</summary>
internal static class RefGroupNorm
{
    /// <summary>Fills mean/rstd (float) with the statistics of x, as the forward op would.</summary>
    internal static void Statistics(float[] x, int[] shape, GroupNormAttrs a, float[] mean, float[] rstd)
    {
        var (B, C, S) = GroupNormOps.Dims(shape, a.Groups);
        int n = C / a.Groups * S;
        for (int bg = 0; bg < B * a.Groups; bg++)
        {
            double m = 0, v = 0;
            for (int i = 0; i < n; i++) m += x[bg * n + i];
            m /= n;
            for (int i = 0; i < n; i++) v += (x[bg * n + i] - m) * (x[bg * n + i] - m);
            v /= n;
            mean[bg] = (float)m;
            rstd[bg] = (float)(1 / Math.Sqrt(v + a.Eps));
        }
    }

    public static void Forward(RefCall c)
    {
        var a = c.A<GroupNormAttrs>();
        var (B, C, S) = GroupNormOps.Dims(c.InShapes[0], a.Groups);
        int G = a.Groups, cg = C / G;
        double[] x = c.In[0], gamma = c.In[1], beta = c.In[2], y = c.Out[0];
        for (int b = 0; b < B; b++)
            for (int g = 0; g < G; g++)
            {
                double sum = 0, sq = 0;
                for (int ch = g * cg; ch < (g + 1) * cg; ch++)
                    for (int s = 0; s < S; s++) sum += x[(b * C + ch) * S + s];
                double m = sum / (cg * S);
                for (int ch = g * cg; ch < (g + 1) * cg; ch++)
                    for (int s = 0; s < S; s++) { double d = x[(b * C + ch) * S + s] - m; sq += d * d; }
                double r = 1 / Math.Sqrt(sq / (cg * S) + a.Eps);
                c.Out[1][b * G + g] = m;
                c.Out[2][b * G + g] = r;
                for (int ch = g * cg; ch < (g + 1) * cg; ch++)
                    for (int s = 0; s < S; s++)
                    {
                        int i = (b * C + ch) * S + s;
                        y[i] = (x[i] - m) * r * gamma[ch] + beta[ch];
                    }
            }
    }

    public static void Backward(RefCall c)
    {
        var a = c.A<GroupNormAttrs>();
        var (B, C, S) = GroupNormOps.Dims(c.InShapes[0], a.Groups);
        int G = a.Groups, cg = C / G, n = cg * S;
        double[] x = c.In[0], gamma = c.In[1], mean = c.In[2], rstd = c.In[3], dy = c.In[4];
        double[] dx = c.Out[0], dgamma = c.Out[1], dbeta = c.Out[2];
        for (int b = 0; b < B; b++)
            for (int g = 0; g < G; g++)
            {
                double m = mean[b * G + g], r = rstd[b * G + g], m1 = 0, m2 = 0;
                for (int ch = g * cg; ch < (g + 1) * cg; ch++)
                    for (int s = 0; s < S; s++)
                    {
                        int i = (b * C + ch) * S + s;
                        double xhat = (x[i] - m) * r;
                        m1 += gamma[ch] * dy[i];
                        m2 += gamma[ch] * dy[i] * xhat;
                        dgamma[ch] += dy[i] * xhat;
                        dbeta[ch] += dy[i];
                    }
                m1 /= n; m2 /= n;
                for (int ch = g * cg; ch < (g + 1) * cg; ch++)
                    for (int s = 0; s < S; s++)
                    {
                        int i = (b * C + ch) * S + s;
                        double xhat = (x[i] - m) * r;
                        dx[i] = r * (gamma[ch] * dy[i] - m1 - xhat * m2);
                    }
            }
    }
}
