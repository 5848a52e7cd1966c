// CPU kernels of the fused AdamW step: clip by the global norm, decoupled weight decay,
// moment updates and the bias-corrected update in one pass over the parameter; adamw_multi runs
// the same sums and updates over a list of parameters.
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

internal static class CpuOptimizer
{
    /// <summary>adamw_step: in [grad, gradNormSq(1)], out [param, m, v] (in place).</summary>
    public static void Step(in OpCall c) => Update(c.A<AdamWAttrs>(), c.In[0], c.In[1], c.Out[0], c.Out[1], c.Out[2]);

    /// <summary>
    /// adamw_multi: gradNormSq = 0, then += sum grad^2 per tensor in list order (the sums and
    /// roundings of sum_squares called per tensor), then the adamw_step of each group in order.
    /// </summary>
    public static void Multi(in OpCall c)
    {
        var a = c.A<AdamWMultiAttrs>();
        var gns = c.Out[0];
        var ga = ((CpuBuffer)gns.Buffer).Data;
        ga[gns.Offset] = 0f;
        foreach (var g in c.In)
            ga[gns.Offset] = (float)(ga[gns.Offset] + CpuReduce.SumSquaredDiff(((CpuBuffer)g.Buffer).Data, (int)g.Offset, null, 0, g.Length));
        var plain = a.Step with { WeightDecay = 0f };
        for (int i = 0; i < c.In.Length; i++)
            Update(a.Decay[i] ? a.Step : plain, c.In[i], gns, c.Out[1 + 3 * i], c.Out[2 + 3 * i], c.Out[3 + 3 * i]);
    }

    private static void Update(AdamWAttrs a, Tensors.Tensor grad, Tensors.Tensor gns, Tensors.Tensor p, Tensors.Tensor m, Tensors.Tensor v)
    {
        int n = grad.Length;
        var s = AdamWScalars.Of(a, ((CpuBuffer)gns.Buffer).Data[gns.Offset]);
        var g = ((CpuBuffer)grad.Buffer).Data; int go = (int)grad.Offset;
        var pa = ((CpuBuffer)p.Buffer).Data; int po = (int)p.Offset;
        var ma = ((CpuBuffer)m.Buffer).Data; int mo = (int)m.Offset;
        var va = ((CpuBuffer)v.Buffer).Data; int vo = (int)v.Offset;
        float b1c = 1 - s.Beta1, b2c = 1 - s.Beta2;
        CpuParallel.For(n, 16384, (st, e) =>
        {
            // Vector lanes do the scalar loop's operations in its order (no fused multiply-adds), so results are identical.
            if (System.Numerics.Vector.IsHardwareAccelerated)
            {
                int w = System.Numerics.Vector<float>.Count;
                var clip = new System.Numerics.Vector<float>(s.Clip);
                var beta1 = new System.Numerics.Vector<float>(s.Beta1);
                var beta2 = new System.Numerics.Vector<float>(s.Beta2);
                var b1 = new System.Numerics.Vector<float>(b1c);
                var b2 = new System.Numerics.Vector<float>(b2c);
                var decay = new System.Numerics.Vector<float>(s.DecayMul);
                var size = new System.Numerics.Vector<float>(s.StepSize);
                var bc2 = new System.Numerics.Vector<float>(s.Bc2Sqrt);
                var eps = new System.Numerics.Vector<float>(s.Eps);
                for (; st <= e - w; st += w)
                {
                    var gi = new System.Numerics.Vector<float>(g, go + st) * clip;
                    var mi = beta1 * new System.Numerics.Vector<float>(ma, mo + st) + b1 * gi;
                    var vi = beta2 * new System.Numerics.Vector<float>(va, vo + st) + b2 * gi * gi;
                    mi.CopyTo(ma, mo + st); vi.CopyTo(va, vo + st);
                    var pi = new System.Numerics.Vector<float>(pa, po + st) * decay;
                    (pi - size * mi / (System.Numerics.Vector.SquareRoot(vi) / bc2 + eps)).CopyTo(pa, po + st);
                }
            }
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
