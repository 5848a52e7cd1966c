using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of <see cref="ElementwiseOps.Axpby"/>: y = alpha * a + beta * b.</summary>
public sealed record AxpbyAttrs(float Alpha, float Beta);

/// <summary>
/// Elementwise arithmetic over equal-length tensors (any shape).
/// add: y = a + b. axpby: y = alpha a + beta b (alpha, beta attributes). No backward op:
/// the gradient of a sum is routed by the caller.
/// </summary>
public static class ElementwiseOps
{
    public static readonly OpDef Add = new("add")
    {
        Cpu = (in OpCall c) => TensorPrimitives.Add(c.In[0].Span, c.In[1].Span, c.Out[0].Span),
        Cuda = Backends.Cuda.Kernels.CudaElementwise.Add,
        Reference = r => { for (int i = 0; i < r.Out[0].Length; i++) r.Out[0][i] = r.In[0][i] + r.In[1][i]; },
        Doc = "y = a + b",
        Cases = [new OpCase("odd", [F(5, 13), F(5, 13)], [Out(5, 13)]), new OpCase("size1", [F(1), F(1)], [Out(1)])],
    };

    public static readonly OpDef Axpby = new("axpby")
    {
        Cpu = CpuAxpby,
        Cuda = Backends.Cuda.Kernels.CudaElementwise.Axpby,
        Reference = r => { var a = r.A<AxpbyAttrs>(); for (int i = 0; i < r.Out[0].Length; i++) r.Out[0][i] = a.Alpha * r.In[0][i] + a.Beta * r.In[1][i]; },
        Doc = "y = alpha a + beta b",
        Cases = [new OpCase("odd", [F(7, 3), F(7, 3)], [Out(7, 3)], new AxpbyAttrs(0.5f, -2f))],
    };

    private static void CpuAxpby(in OpCall c)
    {
        var at = c.A<AxpbyAttrs>();
        var a = c.In[0].Span; var b = c.In[1].Span; var y = c.Out[0].Span;
        for (int i = 0; i < y.Length; i++) y[i] = at.Alpha * a[i] + at.Beta * b[i];
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Add, Axpby);
#pragma warning restore CA2255
}
