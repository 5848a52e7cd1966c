// Op family: elementwise arithmetic (add, axpby). CPU kernels: Backends/Cpu/Kernels/CpuElementwise.cs.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of <see cref="ElementwiseOps.Axpby"/>: y = alpha * a + beta * b.</summary>
internal sealed record AxpbyAttrs(float Alpha, float Beta);

/// <summary>
/// Elementwise arithmetic over equal-length tensors (any shape).
/// add: y = a + b. axpby: y = alpha a + beta b (alpha, beta attributes). No backward op:
/// the gradient of a sum is routed by the caller.
/// </summary>
internal static class ElementwiseOps
{
    public static readonly OpDef Add = new("add")
    {
        Inputs = [Arg.In("a"), Arg.In("b")],
        Outputs = [Arg.Write("y")],
        Shapes = SameLength,
        Cpu = CpuElementwise.Add,
        Cuda = Backends.Cuda.Kernels.CudaElementwise.Add,
        Reference = r => { for (int i = 0; i < r.Out[0].Length; i++) r.Out[0][i] = r.In[0][i] + r.In[1][i]; },
        Doc = "y = a + b",
        Cases = [new OpCase("odd", [F(5, 13), F(5, 13)], [Out(5, 13)]), new OpCase("size1", [F(1), F(1)], [Out(1)])],
    };

    public static readonly OpDef Axpby = new("axpby")
    {
        Inputs = [Arg.In("a"), Arg.In("b")],
        Outputs = [Arg.Write("y")],
        AttrsType = typeof(AxpbyAttrs),
        Shapes = SameLength,
        Cpu = CpuElementwise.Axpby,
        Cuda = Backends.Cuda.Kernels.CudaElementwise.Axpby,
        Reference = r => { var a = r.A<AxpbyAttrs>(); for (int i = 0; i < r.Out[0].Length; i++) r.Out[0][i] = a.Alpha * r.In[0][i] + a.Beta * r.In[1][i]; },
        Doc = "y = alpha a + beta b",
        Cases = [new OpCase("odd", [F(7, 3), F(7, 3)], [Out(7, 3)], new AxpbyAttrs(0.5f, -2f))],
    };

    /// <summary>a, b and y have one element count (their shapes may differ).</summary>
    private static void SameLength(in OpCall c)
    {
        if (c.In[1].Length != c.In[0].Length || c.Out[0].Length != c.In[0].Length)
            throw new ArgumentException($"a {ShapeText.Of(c.In[0])}, b {ShapeText.Of(c.In[1])} and y {ShapeText.Of(c.Out[0])} must have one element count");
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Add, Axpby);
#pragma warning restore CA2255
}
