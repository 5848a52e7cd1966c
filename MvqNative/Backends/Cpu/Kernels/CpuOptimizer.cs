// CPU kernel of the fused AdamW step: clip by the global norm, decoupled weight decay,
// moment updates and the bias-corrected update in one pass over the parameter.
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

internal static class CpuOptimizer
{
    public static void Step(in OpCall c)
    {
        var a = c.A<AdamWAttrs>();
        var grad = c.In[0]; var gns = c.In[1];
        var p = c.Out[0]; var m = c.Out[1]; var v = c.Out[2];
        int n = grad.Length;
        var s = AdamWScalars.Of(a, ((CpuBuffer)gns.Buffer).Data[gns.Offset]);
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
