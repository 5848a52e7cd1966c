using System.Numerics;
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
        if (kind is ActivationKind.Relu or ActivationKind.LeakyRelu)
        {
            // Vector form of the scalar loop below, element for element the same result (a select of v or slope * v).
            float sl = kind == ActivationKind.Relu ? 0f : slope;
            CpuParallel.For(c.In[0].Length, 16384, (s, e) => RectifyForward(x.AsSpan(xo + s, e - s), y.AsSpan(yo + s, e - s), sl));
            return;
        }
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
        if (kind is ActivationKind.Relu or ActivationKind.LeakyRelu)
        {
            float sl = kind == ActivationKind.Relu ? 0f : slope;
            CpuParallel.For(c.In[0].Length, 16384, (s, e) => RectifyBackward(x.AsSpan(xo + s, e - s), dy.AsSpan(dyo + s, e - s), dx.AsSpan(dxo + s, e - s), sl));
            return;
        }
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

    /// <summary>y = v > 0 ? v : slope * v (relu: slope 0, and the negative side is +0 as in the scalar loop).</summary>
    private static void RectifyForward(ReadOnlySpan<float> x, Span<float> y, float slope)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var zero = Vector<float>.Zero;
            var sv = new Vector<float>(slope);
            bool relu = slope == 0f;
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                Vector.ConditionalSelect(Vector.GreaterThan(v, zero), v, relu ? zero : v * sv).CopyTo(y[i..]);
            }
        }
        if (slope == 0f) for (; i < x.Length; i++) { float v = x[i]; y[i] = v > 0 ? v : 0; }
        else for (; i < x.Length; i++) { float v = x[i]; y[i] = v > 0 ? v : slope * v; }
    }

    /// <summary>dx = dy * (v > 0 ? 1 : slope); dy * 1 is dy exactly, so the vector form selects dy or dy * slope.</summary>
    private static void RectifyBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx, float slope)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var zero = Vector<float>.Zero;
            var sv = new Vector<float>(slope);
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                var g = new Vector<float>(dy[i..]);
                Vector.ConditionalSelect(Vector.GreaterThan(v, zero), g, g * sv).CopyTo(dx[i..]);
            }
        }
        for (; i < x.Length; i++) dx[i] = dy[i] * (x[i] > 0 ? 1 : slope);
    }
}
