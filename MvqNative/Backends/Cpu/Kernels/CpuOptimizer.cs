// CPU kernel of the fused AdamW step: clip by the global norm, decoupled weight decay,
// moment updates and the bias-corrected update in one pass over the parameter.
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

internal static class CpuOptimizer
{
    /// <summary>Scalars shared by every element of one adamw_step call (PyTorch AdamW semantics).</summary>
    internal readonly record struct AdamWScalars(float Clip, float DecayMul, float Beta1, float Beta2, float StepSize, float Bc2Sqrt, float Eps);

    internal static AdamWScalars Scalars(AdamWAttrs a, double gradNormSq)
    {
        if (a.Step < 1) throw new ArgumentOutOfRangeException(nameof(a), $"adamw_step: Step must be >= 1, got {a.Step}");
        // torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6), clamped to 1.
        double clip = a.ClipNorm > 0 ? Math.Min(1.0, a.ClipNorm / (Math.Sqrt(Math.Max(0, gradNormSq)) + 1e-6)) : 1.0;
        double bc1 = 1 - Math.Pow(a.Beta1, a.Step);
        double bc2 = 1 - Math.Pow(a.Beta2, a.Step);
        return new AdamWScalars((float)clip, (float)(1 - (double)a.Lr * a.WeightDecay), a.Beta1, a.Beta2,
            (float)(a.Lr / bc1), (float)Math.Sqrt(bc2), a.Eps);
    }

    /// <summary>Shape checks of adamw_step shared by every backend; returns the element count.</summary>
    internal static int CheckShapes(in OpCall c)
    {
        var grad = c.In[0]; var gns = c.In[1];
        var p = c.Out[0]; var m = c.Out[1]; var v = c.Out[2];
        int n = grad.Length;
        if (p.Length != n || m.Length != n || v.Length != n)
            throw new ArgumentException($"adamw_step: grad [{grad.ShapeString}], param [{p.ShapeString}], m [{m.ShapeString}], v [{v.ShapeString}] differ");
        if (gns.Length != 1) throw new ArgumentException($"adamw_step: gradNormSq must have one element, got [{gns.ShapeString}]");
        return n;
    }

    public static void Step(in OpCall c)
    {
        var a = c.A<AdamWAttrs>();
        var grad = c.In[0]; var gns = c.In[1];
        var p = c.Out[0]; var m = c.Out[1]; var v = c.Out[2];
        int n = CpuOptimizer.CheckShapes(c);
        var s = Scalars(a, ((CpuBuffer)gns.Buffer).Data[gns.Offset]);
        var g = ((CpuBuffer)grad.Buffer).Data; int go = (int)grad.Offset;
        var pa = ((CpuBuffer)p.Buffer).Data; int po = (int)p.Offset;
        var ma = ((CpuBuffer)m.Buffer).Data; int mo = (int)m.Offset;
        var va = ((CpuBuffer)v.Buffer).Data; int vo = (int)v.Offset;
        float b1c = 1 - s.Beta1, b2c = 1 - s.Beta2;
        CpuParallel.For(n, 16384, (st, e) =>
        {
            for (int i = st; i < e; i++)
            {
                float gi = g[go + i] * s.Clip;
                float mi = s.Beta1 * ma[mo + i] + b1c * gi;
                float vi = s.Beta2 * va[vo + i] + b2c * gi * gi;
                ma[mo + i] = mi; va[vo + i] = vi;
                float pi = pa[po + i] * s.DecayMul;
                pa[po + i] = pi - s.StepSize * mi / (MathF.Sqrt(vi) / s.Bc2Sqrt + s.Eps);
            }
        });
    }
}
