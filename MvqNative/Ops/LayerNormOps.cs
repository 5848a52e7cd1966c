// Layer normalisation ops of the prior: layer_norm_forward / layer_norm_backward with their float64 reference.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of the layer norm ops: the variance epsilon (PyTorch's default 1e-5).</summary>
internal sealed record LayerNormAttrs(float Eps = 1e-5f);

/// <summary>
/// Layer normalisation over the last dimension (PyTorch's LayerNorm(C)). x [N, C] (any rank; the last
/// dimension is C, the others are rows), biased variance.
/// forward: in [x, gamma (C), beta (C)], out [y (x's shape), mean (N), rstd (N)],
///   y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + eps).
/// backward: in [x, gamma, mean, rstd, dy], out [dx (=), dgamma (C) (+=), dbeta (C) (+=)],
///   xhat = (x - mean) rstd, g = gamma dy, dx = rstd (g - mean_c(g) - xhat mean_c(g xhat)),
///   dgamma += sum_n dy xhat, dbeta += sum_n dy (fixed row chunks summed in order: deterministic).
/// </summary>
internal static class LayerNormOps
{
    public static readonly OpDef Forward = new("layer_norm_forward")
    {
        Inputs = [Arg.In("x"), Arg.In("gamma"), Arg.In("beta")],
        Outputs = [Arg.Write("y"), Arg.Write("mean"), Arg.Write("rstd")],
        AttrsType = typeof(LayerNormAttrs),
        Shapes = (in OpCall c) =>
        {
            var (n, ch) = Rows(c.In[0]);
            ShapeText.Length(c.In[1], "gamma", ch); ShapeText.Length(c.In[2], "beta", ch);
            ShapeText.Length(c.Out[0], "y", c.In[0].Length); ShapeText.Length(c.Out[1], "mean", n); ShapeText.Length(c.Out[2], "rstd", n);
        },
        Cpu = CpuLayerNorm.Forward,
        Cuda = Backends.Cuda.Kernels.CudaLayerNorm.Forward,
        Reference = RefLayerNorm.Forward,
        Grad = GradSpec.By("layer_norm_backward", [GradArg.In(0), GradArg.In(1), GradArg.Out(1), GradArg.Out(2), GradArg.Dy(0)], 0, 1, 2),
        Doc = "x[N,C], gamma[C], beta[C] -> y = (x-mean)*rstd*gamma+beta, mean[N], rstd[N] (stats per row, biased var)",
        Cases =
        [
            FwdCase("odd", 7, 13),
            FwdCase("size1", 1, 1),
            FwdCase("one row", 1, 37),
            FwdCase("width 1", 5, 1),
            // CUDA: rows wider than one block / warp pass, vector tails on the CPU.
            FwdCase("wide", 9, 1031),
            FwdCase("many rows", 300, 64),
            // A large offset checks that the statistics do not lose precision to cancellation.
            new OpCase("offset mean", [new TensorSpec([6, 40], Lo: 100f, Hi: 101f), F(40), F(40)], [Out(6, 40), Out(6), Out(6)], new LayerNormAttrs()),
        ],
    };

    public static readonly OpDef BackwardOp = new("layer_norm_backward")
    {
        Inputs = [Arg.In("x"), Arg.In("gamma"), Arg.In("mean"), Arg.In("rstd"), Arg.In("dy")],
        Outputs = [Arg.Write("dx"), Arg.Acc("dgamma"), Arg.Acc("dbeta")],
        AttrsType = typeof(LayerNormAttrs),
        Shapes = (in OpCall c) =>
        {
            var (n, ch) = Rows(c.In[0]);
            ShapeText.Length(c.In[1], "gamma", ch); ShapeText.Length(c.In[2], "mean", n); ShapeText.Length(c.In[3], "rstd", n);
            ShapeText.Length(c.In[4], "dy", c.In[0].Length);
            ShapeText.Length(c.Out[0], "dx", c.In[0].Length); ShapeText.Length(c.Out[1], "dgamma", ch); ShapeText.Length(c.Out[2], "dbeta", ch);
        },
        Cpu = CpuLayerNorm.Backward,
        Cuda = Backends.Cuda.Kernels.CudaLayerNorm.Backward,
        Reference = RefLayerNorm.Backward,
        Doc = "x, gamma, mean, rstd, dy -> dx (=), dgamma (+=), dbeta (+=)",
        Cases =
        [
            BwdCase("odd", 7, 13),
            BwdCase("size1", 1, 1),
            BwdCase("width 1", 5, 1),
            BwdCase("wide", 9, 1031),
            // More rows than one CPU chunk / CUDA column-sum pass.
            BwdCase("many rows", 700, 48),
        ],
    };

    /// <summary>Rows and width of x [..., C] (normalised over the last dimension).</summary>
    internal static (int N, int C) Rows(Tensor x)
    {
        if (x.Rank < 1) throw new ArgumentException($"x must be [..., C], got {ShapeText.Of(x)}");
        int c = x.Dim(-1);
        return (c == 0 ? 0 : x.Length / c, c);
    }

    /// <summary>layer_norm_backward by name: dx written, dgamma and dbeta accumulated.</summary>
    public static void RunBackward(Backends.Backend backend, LayerNormAttrs attrs, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dy, Tensor dx, Tensor dgamma, Tensor dbeta) =>
        BackwardOp.Run(backend, [x, gamma, mean, rstd, dy], [dx, dgamma, dbeta], attrs);

    private static OpCase FwdCase(string label, int n, int c) =>
        new(label, [F(n, c), F(c), F(c)], [Out(n, c), Out(n), Out(n)], new LayerNormAttrs());

    /// <summary>A backward case whose mean/rstd inputs are the true statistics of its x.</summary>
    private static OpCase BwdCase(string label, int n, int c)
    {
        var attrs = new LayerNormAttrs();
        return new OpCase(label, [F(n, c), F(c), F(n), F(n), F(n, c)], [Out(n, c), F(c), F(c)], attrs)
        {
            Prepare = ins => RefLayerNorm.Statistics(ins[0], n, c, attrs.Eps, ins[2], ins[3]),
        };
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 layer norm.</summary>
internal static class RefLayerNorm
{
    internal static (int N, int C) Dims(int[] shape)
    {
        int c = shape.Length == 0 ? 1 : shape[^1], n = 1;
        for (int i = 0; i < shape.Length - 1; i++) n *= shape[i];
        return (n, c);
    }

    /// <summary>Fills mean/rstd (float) with the statistics of x, as the forward op would.</summary>
    internal static void Statistics(float[] x, int n, int c, float eps, float[] mean, float[] rstd)
    {
        for (int r = 0; r < n; r++)
        {
            double m = 0, v = 0;
            for (int j = 0; j < c; j++) m += x[r * c + j];
            m /= c;
            for (int j = 0; j < c; j++) v += (x[r * c + j] - m) * (x[r * c + j] - m);
            mean[r] = (float)m;
            rstd[r] = (float)(1 / Math.Sqrt(v / c + eps));
        }
    }

    public static void Forward(RefCall call)
    {
        var a = call.A<LayerNormAttrs>();
        var (n, c) = Dims(call.InShapes[0]);
        double[] x = call.In[0], gamma = call.In[1], beta = call.In[2], y = call.Out[0];
        for (int r = 0; r < n; r++)
        {
            double m = 0, v = 0;
            for (int j = 0; j < c; j++) m += x[r * c + j];
            m /= c;
            for (int j = 0; j < c; j++) v += (x[r * c + j] - m) * (x[r * c + j] - m);
            double rs = 1 / Math.Sqrt(v / c + a.Eps);
            call.Out[1][r] = m;
            call.Out[2][r] = rs;
            for (int j = 0; j < c; j++) y[r * c + j] = (x[r * c + j] - m) * rs * gamma[j] + beta[j];
        }
    }

    public static void Backward(RefCall call)
    {
        var (n, c) = Dims(call.InShapes[0]);
        double[] x = call.In[0], gamma = call.In[1], mean = call.In[2], rstd = call.In[3], dy = call.In[4];
        double[] dx = call.Out[0], dgamma = call.Out[1], dbeta = call.Out[2];
        for (int r = 0; r < n; r++)
        {
            double m1 = 0, m2 = 0;
            for (int j = 0; j < c; j++)
            {
                int i = r * c + j;
                double xhat = (x[i] - mean[r]) * rstd[r];
                m1 += gamma[j] * dy[i];
                m2 += gamma[j] * dy[i] * xhat;
                dgamma[j] += dy[i] * xhat;
                dbeta[j] += dy[i];
            }
            m1 /= c; m2 /= c;
            for (int j = 0; j < c; j++)
            {
                int i = r * c + j;
                double xhat = (x[i] - mean[r]) * rstd[r];
                dx[i] = rstd[r] * (gamma[j] * dy[i] - m1 - xhat * m2);
            }
        }
    }
}
