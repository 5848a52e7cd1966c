// Loss ops: mse_loss, l1_loss (loss and gradient in one op) and sum_squared_error (eval), with float64 references.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of the loss ops: a factor applied to the loss and its gradient.</summary>
internal sealed record LossAttrs(float Scale = 1f);

/// <summary>
/// Reconstruction losses over equal-size tensors of any shape (n elements), mean reduction
/// in double, deterministic. Each op writes the loss and its gradient in one pass, so they
/// have no separate backward op.
/// mse_loss: in [pred, target], out [loss(1), dpred]: loss = Scale mean (p - t)^2, dpred = Scale 2 (p - t) / n.
/// l1_loss: in [pred, target], out [loss(1), dpred]: loss = Scale mean |p - t|, dpred = Scale sign(p - t) / n, sign(0) = 0.
/// sum_squared_error: in [a, b], out [s(1)]: s = sum (a - b)^2 (evaluation; no gradient).
/// </summary>
internal static class LossOps
{
    public static readonly OpDef Mse = new("mse_loss")
    {
        Inputs = [Arg.In("pred"), Arg.In("target")],
        Outputs = [Arg.Write("loss"), Arg.Write("dpred")],
        AttrsType = typeof(LossAttrs),
        Shapes = LossShapes,
        Cpu = CpuLoss.Mse,
        Cuda = Backends.Cuda.Kernels.CudaLoss.MseLoss,
        Reference = RefLoss.Mse,
        Grad = new GradSpec { Fused = (0, 1, 0) },
        Doc = "pred, target -> loss[1] = s*mean((p-t)^2), dpred = s*2(p-t)/n",
        Cases = Cases(),
    };

    public static readonly OpDef L1 = new("l1_loss")
    {
        Inputs = [Arg.In("pred"), Arg.In("target")],
        Outputs = [Arg.Write("loss"), Arg.Write("dpred")],
        AttrsType = typeof(LossAttrs),
        Shapes = LossShapes,
        Cpu = CpuLoss.L1,
        Cuda = Backends.Cuda.Kernels.CudaLoss.L1Loss,
        Reference = RefLoss.L1,
        Grad = new GradSpec
        {
            Fused = (0, 1, 0),
            // |p - t| has a kink where p = t: keep every target at least 0.1 away from its prediction.
            Prepare = ins =>
            {
                double[] p = ins[0], t = ins[1];
                for (int i = 0; i < p.Length; i++) if (Math.Abs(p[i] - t[i]) < 0.1) t[i] = p[i] + (t[i] >= p[i] ? 0.1 : -0.1);
            },
        },
        Doc = "pred, target -> loss[1] = s*mean|p-t|, dpred = s*sign(p-t)/n",
        Cases = Cases(),
    };

    public static readonly OpDef SumSquaredError = new("sum_squared_error")
    {
        Inputs = [Arg.In("a"), Arg.In("b")],
        Outputs = [Arg.Write("s")],
        Shapes = (in OpCall c) =>
        {
            ShapeText.SameShape(c.In[1], "b", c.In[0], "a");
            ShapeText.Require(c.Out[0], "s", 1);
        },
        Cpu = CpuLoss.SumSquaredError,
        Cuda = Backends.Cuda.Kernels.CudaLoss.SumSquaredError,
        Reference = RefLoss.SumSquaredError,
        Doc = "a, b -> s[1] = sum (a-b)^2, accumulated in double",
        Cases =
        [
            new OpCase("odd", [F(3, 7, 5), F(3, 7, 5)], [Out(1)]),
            new OpCase("size1", [F(1), F(1)], [Out(1)]),
            new OpCase("many blocks", [F(5, 4001), F(5, 4001)], [Out(1)]),
        ],
    };

    /// <summary>pred and target of one shape, not empty (a mean over nothing is undefined); loss [1]; dpred like pred.</summary>
    private static void LossShapes(in OpCall c)
    {
        ShapeText.SameShape(c.In[1], "target", c.In[0], "pred");
        if (c.In[0].Length == 0) throw new ArgumentException($"pred {ShapeText.Of(c.In[0])} is empty");
        ShapeText.Require(c.Out[0], "loss", 1);
        ShapeText.SameShape(c.Out[1], "dpred", c.In[0], "pred");
    }

    private static OpCase[] Cases() =>
    [
        new OpCase("odd", [F(3, 7, 5), F(3, 7, 5)], [Out(1), Out(3, 7, 5)], new LossAttrs()),
        new OpCase("size1", [F(1), F(1)], [Out(1), Out(1)], new LossAttrs(0.5f)),
        // More elements than one reduction block, with a scale.
        new OpCase("many blocks scaled", [F(5, 4001), F(5, 4001)], [Out(1), Out(5, 4001)], new LossAttrs(2.5f)),
    ];

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Mse, L1, SumSquaredError);
#pragma warning restore CA2255
}

/// <summary>Plain-loop float64 losses.</summary>
internal static class RefLoss
{
    private static double Sign(double d) => d > 0 ? 1 : d < 0 ? -1 : d * 0;

    public static void Mse(RefCall c)
    {
        double s = c.A<LossAttrs>().Scale, sum = 0;
        double[] p = c.In[0], t = c.In[1];
        int n = p.Length;
        for (int i = 0; i < n; i++)
        {
            sum += (p[i] - t[i]) * (p[i] - t[i]);
            c.Out[1][i] = s * 2 * (p[i] - t[i]) / n;
        }
        c.Out[0][0] = s * sum / n;
    }

    public static void L1(RefCall c)
    {
        double s = c.A<LossAttrs>().Scale, sum = 0;
        double[] p = c.In[0], t = c.In[1];
        int n = p.Length;
        for (int i = 0; i < n; i++)
        {
            sum += Math.Abs(p[i] - t[i]);
            c.Out[1][i] = s * Sign(p[i] - t[i]) / n;
        }
        c.Out[0][0] = s * sum / n;
    }

    public static void SumSquaredError(RefCall c)
    {
        double sum = 0;
        for (int i = 0; i < c.In[0].Length; i++) sum += (c.In[0][i] - c.In[1][i]) * (c.In[0][i] - c.In[1][i]);
        c.Out[0][0] = sum;
    }
}
