// Optimiser ops: adamw_step, one fused pass per parameter (clip, decay, moments, update).
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using MvqNative.Tensors;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Attributes of adamw_step. <paramref name="Step"/> is 1-based (the bias corrections use it).
/// <paramref name="ClipNorm"/> &lt;= 0 disables clipping by the global gradient norm.
/// </summary>
internal sealed record AdamWAttrs(float Lr, float Beta1, float Beta2, float Eps, float WeightDecay, int Step, float ClipNorm);

/// <summary>Scalars shared by every element of one adamw_step call (PyTorch AdamW semantics), computed on the host by every backend.</summary>
internal readonly record struct AdamWScalars(float Clip, float DecayMul, float Beta1, float Beta2, float StepSize, float Bc2Sqrt, float Eps)
{
    internal static AdamWScalars Of(AdamWAttrs a, double gradNormSq)
    {
        // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1.
        double clip = a.ClipNorm > 0 ? Math.Min(1.0, a.ClipNorm / (Math.Sqrt(Math.Max(0, gradNormSq)) + 1e-6)) : 1.0;
        double bc1 = 1 - Math.Pow(a.Beta1, a.Step);
        double bc2 = 1 - Math.Pow(a.Beta2, a.Step);
        return new AdamWScalars((float)clip, (float)(1 - (double)a.Lr * a.WeightDecay), a.Beta1, a.Beta2,
            (float)(a.Lr / bc1), (float)Math.Sqrt(bc2), a.Eps);
    }
}

/// <summary>Optimiser update ops (no backward).</summary>
internal static class OptimizerOps
{
    /// <summary>in [grad, gradNormSq [1]], out [param, m, v] (read and written in place).</summary>
    public static readonly OpDef AdamWStep = new("adamw_step")
    {
        Inputs = [Arg.In("grad"), Arg.In("gradNormSq")],
        Outputs = [Arg.Update("param"), Arg.Update("m"), Arg.Update("v")],
        AttrsType = typeof(AdamWAttrs),
        Shapes = (in OpCall c) =>
        {
            ShapeText.Require(c.In[1], "gradNormSq", 1);
            ShapeText.SameShape(c.Out[0], "param", c.In[0], "grad");
            ShapeText.SameShape(c.Out[1], "m", c.In[0], "grad");
            ShapeText.SameShape(c.Out[2], "v", c.In[0], "grad");
            int step = c.A<AdamWAttrs>().Step;
            if (step < 1) throw new ArgumentException($"step must be >= 1, got {step}");
        },
        Cpu = CpuOptimizer.Step,
        Cuda = Backends.Cuda.Kernels.CudaOptimizer.Step,
        Reference = RefOptimizer.AdamW,
        Doc = "PyTorch AdamW with clip_grad_norm_: c = min(1, clip/(sqrt(gradNormSq)+1e-6)) (clip<=0: c=1), g = c*grad; param *= 1 - lr*wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; param -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps); in [grad, gradNormSq(1)] out [param, m, v] (in place)",
        Cases =
        [
            new OpCase("clipped decay odd", [F(7, 13), new TensorSpec([1], DType.F32, 4f, 9f)], [F(7, 13), F(7, 13), new TensorSpec([7, 13], DType.F32, 0f, 1f)],
                new AdamWAttrs(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 3, 1f)) { Tolerance = 1e-12 },
            new OpCase("no clip first step", [F(37), new TensorSpec([1], DType.F32, 4f, 9f)], [F(37), F(37), new TensorSpec([37], DType.F32, 0f, 1f)],
                new AdamWAttrs(5e-4f, 0.9f, 0.99f, 1e-8f, 0f, 1, 0f)) { Tolerance = 1e-12 },
            new OpCase("several blocks", [F(5001), new TensorSpec([1], DType.F32, 100f, 200f)], [F(5001), F(5001), new TensorSpec([5001], DType.F32, 0f, 1f)],
                new AdamWAttrs(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 2, 1f)) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1), new TensorSpec([1], DType.F32, 0f, 0.5f)], [F(1), F(1), new TensorSpec([1], DType.F32, 0f, 1f)],
                new AdamWAttrs(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 10, 1f)) { Tolerance = 1e-12 },
        ],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(AdamWStep);
#pragma warning restore CA2255
}

/// <summary>Float64 reference of the optimiser ops.</summary>
internal static class RefOptimizer
{
    public static void AdamW(RefCall c)
    {
        var a = c.A<AdamWAttrs>();
        double lr = a.Lr, b1 = a.Beta1, b2 = a.Beta2, eps = a.Eps, wd = a.WeightDecay;
        double clip = a.ClipNorm > 0 ? Math.Min(1.0, a.ClipNorm / (Math.Sqrt(c.In[1][0]) + 1e-6)) : 1.0;
        double bc1 = 1 - Math.Pow(b1, a.Step), bc2 = 1 - Math.Pow(b2, a.Step);
        var p = c.Out[0]; var m = c.Out[1]; var v = c.Out[2];
        for (int i = 0; i < p.Length; i++)
        {
            double g = c.In[0][i] * clip;
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
        }
    }
}
