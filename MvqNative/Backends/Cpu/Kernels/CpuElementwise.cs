// CPU kernels of the elementwise ops (Ops/ElementwiseOps.cs).
using System.Numerics.Tensors;
using MvqNative.Ops;

namespace MvqNative.Backends.Cpu;

internal static class CpuElementwise
{
    /// <summary>y = a + b.</summary>
    public static void Add(in OpCall c) => TensorPrimitives.Add(c.In[0].Span, c.In[1].Span, c.Out[0].Span);

    /// <summary>y = alpha a + beta b.</summary>
    public static void Axpby(in OpCall c)
    {
        var at = c.A<AxpbyAttrs>();
        var a = c.In[0].Span; var b = c.In[1].Span; var y = c.Out[0].Span;
        for (int i = 0; i < y.Length; i++) y[i] = at.Alpha * a[i] + at.Beta * b[i];
    }
}
