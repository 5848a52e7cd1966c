using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

/// <summary>CPU activations, parallel over chunks.</summary>
internal static class CpuActivation
{
    public static void Forward(in OpCall c)
    {
        var a = c.A<ActivationAttrs>();
        var x = ((CpuBuffer)c.In[0].Buffer).Data; int xo = (int)c.In[0].Offset;
        var y = ((CpuBuffer)c.Out[0].Buffer).Data; int yo = (int)c.Out[0].Offset;
        var kind = a.Kind; float slope = a.Slope;
        CpuParallel.For(c.In[0].Length, 16384, (s, e) =>
        {
            switch (kind)
            {
                case ActivationKind.Relu: for (int i = s; i < e; i++) { float v = x[xo + i]; y[yo + i] = v > 0 ? v : 0; } break;
                case ActivationKind.LeakyRelu: for (int i = s; i < e; i++) { float v = x[xo + i]; y[yo + i] = v > 0 ? v : slope * v; } break;
                case ActivationKind.Silu: for (int i = s; i < e; i++) { float v = x[xo + i]; y[yo + i] = v / (1 + MathF.Exp(-v)); } break;
                case ActivationKind.Sigmoid: for (int i = s; i < e; i++) { float v = x[xo + i]; y[yo + i] = 1 / (1 + MathF.Exp(-v)); } break;
            }
        });
    }

    public static void Backward(in OpCall c)
    {
        var a = c.A<ActivationAttrs>();
        var x = ((CpuBuffer)c.In[0].Buffer).Data; int xo = (int)c.In[0].Offset;
        var dy = ((CpuBuffer)c.In[1].Buffer).Data; int dyo = (int)c.In[1].Offset;
        var dx = ((CpuBuffer)c.Out[0].Buffer).Data; int dxo = (int)c.Out[0].Offset;
        var kind = a.Kind; float slope = a.Slope;
        CpuParallel.For(c.In[0].Length, 16384, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                float v = x[xo + i], g = dy[dyo + i], d;
                switch (kind)
                {
                    case ActivationKind.Relu: d = v > 0 ? 1 : 0; break;
                    case ActivationKind.LeakyRelu: d = v > 0 ? 1 : slope; break;
                    case ActivationKind.Silu: { float sg = 1 / (1 + MathF.Exp(-v)); d = sg * (1 + v * (1 - sg)); break; }
                    default: { float sg = 1 / (1 + MathF.Exp(-v)); d = sg * (1 - sg); break; }
                }
                dx[dxo + i] = g * d;
            }
        });
    }
}
