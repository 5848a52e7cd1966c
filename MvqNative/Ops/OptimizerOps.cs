// Optimiser ops: adamw_step, one fused pass per parameter (clip, decay, moments, update), and
// adamw_multi, the global gradient norm and the step of a whole parameter list in one op.
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

/// <summary>
/// Attributes of adamw_multi: the step's hyper-parameters and, per tensor group, whether it gets
/// weight decay (<see cref="AdamWAttrs.WeightDecay"/> for a true entry, none for a false one).
/// </summary>
internal sealed record AdamWMultiAttrs(AdamWAttrs Step, bool[] Decay);

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

    /// <summary>
    /// in [grad[T]], out [gradNormSq [1] (=), (param, m, v)[T] (in place)]: gradNormSq = sum of every
    /// grad^2 (the squared global norm, clipped against), then the adamw_step of every group, with
    /// weight decay where <see cref="AdamWMultiAttrs.Decay"/> says so. One op for the whole list: on
    /// CUDA two launches (norm, step) over a device table of the list, whatever T.
    /// </summary>
    public static readonly OpDef AdamWMulti = new("adamw_multi")
    {
        Inputs = [Arg.In("grad").Each()],
        Outputs = [Arg.Write("gradNormSq"), Arg.Update("param").Each(), Arg.Update("m").Each(), Arg.Update("v").Each()],
        AttrsType = typeof(AdamWMultiAttrs),
        Shapes = (in OpCall c) =>
        {
            ShapeText.Require(c.Out[0], "gradNormSq", 1);
            var a = c.A<AdamWMultiAttrs>();
            int t = c.In.Length;
            if (a.Decay is null || a.Decay.Length != t) throw new ArgumentException($"Decay has {a.Decay?.Length ?? 0} flags for {t} tensor groups");
            if (a.Step.Step < 1) throw new ArgumentException($"step must be >= 1, got {a.Step.Step}");
            for (int i = 0; i < t; i++)
            {
                var g = c.In[i];
                if (!c.Out[1 + 3 * i].SameShape(g) || !c.Out[2 + 3 * i].SameShape(g) || !c.Out[3 + 3 * i].SameShape(g))
                    throw new ArgumentException($"param[{i}] {ShapeText.Of(c.Out[1 + 3 * i])}, m[{i}] {ShapeText.Of(c.Out[2 + 3 * i])} and v[{i}] {ShapeText.Of(c.Out[3 + 3 * i])} must have the shape of grad[{i}] {ShapeText.Of(g)}");
            }
        },
        Cpu = CpuOptimizer.Multi,
        Cuda = Backends.Cuda.Kernels.CudaOptimizer.Multi,
        Reference = RefOptimizer.AdamWMulti,
        Doc = "gradNormSq = sum of every grad^2; then adamw_step of every (param, m, v) group, decay per group",
        Cases =
        [
            MultiCase("three odd tensors", [[7, 13], [37], [3, 5, 2]], [true, false, true], new AdamWAttrs(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 3, 1f)),
            // Tensors over one CUDA chunk (4096 elements) and a short last chunk; clipping off.
            MultiCase("several chunks no clip", [[5001], [1], [4096], [2, 4097]], [true, true, false, true], new AdamWAttrs(1e-3f, 0.9f, 0.99f, 1e-8f, 0.01f, 1, 0f)),
            MultiCase("size1", [[1]], [false], new AdamWAttrs(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 10, 1f)),
        ],
    };

    private static OpCase MultiCase(string label, int[][] shapes, bool[] decay, AdamWAttrs a)
    {
        var outs = new List<TensorSpec> { Out(1) };
        foreach (var s in shapes) { outs.Add(F(s)); outs.Add(F(s)); outs.Add(new TensorSpec(s, DType.F32, 0f, 1f)); }
        return new OpCase(label, [.. shapes.Select(s => F(s))], [.. outs], new AdamWMultiAttrs(a, decay)) { Tolerance = 1e-12 };
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(AdamWStep, AdamWMulti);
#pragma warning restore CA2255
}

/// <summary>Float64 reference of the optimiser ops.</summary>
internal static class RefOptimizer
{
    public static void AdamW(RefCall c) => Update(c.A<AdamWAttrs>(), c.In[0], c.In[1][0], c.Out[0], c.Out[1], c.Out[2]);

    public static void AdamWMulti(RefCall c)
    {
        var a = c.A<AdamWMultiAttrs>();
        double gns = 0;
        foreach (var g in c.In) foreach (var x in g) gns += x * x;
        c.Out[0][0] = gns;
        for (int i = 0; i < c.In.Length; i++)
            Update(a.Decay[i] ? a.Step : a.Step with { WeightDecay = 0f }, c.In[i], gns, c.Out[1 + 3 * i], c.Out[2 + 3 * i], c.Out[3 + 3 * i]);
    }

    private static void Update(AdamWAttrs a, double[] grad, double gradNormSq, double[] p, double[] m, double[] v)
    {
        double lr = a.Lr, b1 = a.Beta1, b2 = a.Beta2, eps = a.Eps, wd = a.WeightDecay;
        double clip = a.ClipNorm > 0 ? Math.Min(1.0, a.ClipNorm / (Math.Sqrt(gradNormSq) + 1e-6)) : 1.0;
        double bc1 = 1 - Math.Pow(b1, a.Step), bc2 = 1 - Math.Pow(b2, a.Step);
        for (int i = 0; i < p.Length; i++)
        {
            double g = grad[i] * clip;
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            p[i] -= lr / bc1 * m[i] / (Math.Sqrt(v[i]) / Math.Sqrt(bc2) + eps);
        }
    }
}
