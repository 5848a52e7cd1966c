using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of the activation ops.</summary>
internal sealed record ActivationAttrs(ActivationKind Kind, float Slope = 0.2f);

internal enum ActivationKind { Relu, LeakyRelu, Silu, Sigmoid }

/// <summary>
/// Pointwise activations. forward: y = f(x); backward: dx = dy * f'(x) (from x, not y).
/// Shapes: any; in = [x] / [x, dy], out = [y] / [dx].
/// </summary>
internal static class ActivationOps
{
    public static readonly OpDef Forward = new("activation_forward")
    {
        Inputs = [Arg.In("x")],
        Outputs = [Arg.Write("y")],
        AttrsType = typeof(ActivationAttrs),
        Shapes = (in OpCall c) => ShapeText.SameShape(c.Out[0], "y", c.In[0], "x"),
        Cpu = CpuActivation.Forward,
        Cuda = Backends.Cuda.Kernels.CudaActivation.Forward,
        Reference = RefActivation.Forward,
        Grad = GradSpec.By("activation_backward", [GradArg.In(0), GradArg.Dy(0)], 0) with
        {
            // relu and leaky relu have a kink at 0: keep inputs 0.05 away so that no difference step crosses it.
            Prepare = ins => { var x = ins[0]; for (int i = 0; i < x.Length; i++) if (Math.Abs(x[i]) < 0.05) x[i] = x[i] < 0 ? -0.05 - 0.5 * -x[i] : 0.05 + 0.5 * x[i]; },
        },
        Doc = "y = f(x), f in relu, leaky_relu(slope), silu, sigmoid",
        Cases = [.. Enum.GetValues<ActivationKind>().Select(k => new OpCase($"{k} odd", [F(3, 7, 5)], [Out(3, 7, 5)], new ActivationAttrs(k)) { Tolerance = 1e-12 }),
                 new OpCase("size1", [F(1)], [Out(1)], new ActivationAttrs(ActivationKind.LeakyRelu))],
    };

    public static readonly OpDef BackwardOp = new("activation_backward")
    {
        Inputs = [Arg.In("x"), Arg.In("dy")],
        Outputs = [Arg.Write("dx")],
        AttrsType = typeof(ActivationAttrs),
        Shapes = (in OpCall c) => { ShapeText.SameShape(c.In[1], "dy", c.In[0], "x"); ShapeText.SameShape(c.Out[0], "dx", c.In[0], "x"); },
        Cpu = CpuActivation.Backward,
        Cuda = Backends.Cuda.Kernels.CudaActivation.Backward,
        Reference = RefActivation.Backward,
        Doc = "dx = dy * f'(x)",
        Cases = [.. Enum.GetValues<ActivationKind>().Select(k => new OpCase($"{k} odd", [F(3, 7, 5), F(3, 7, 5)], [Out(3, 7, 5)], new ActivationAttrs(k)) { Tolerance = 1e-12 })],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

internal static class RefActivation
{
    internal static double F(ActivationKind k, double slope, double x) => k switch
    {
        ActivationKind.Relu => x > 0 ? x : 0,
        ActivationKind.LeakyRelu => x > 0 ? x : slope * x,
        ActivationKind.Silu => x / (1 + Math.Exp(-x)),
        ActivationKind.Sigmoid => 1 / (1 + Math.Exp(-x)),
        _ => throw new ArgumentOutOfRangeException(nameof(k)),
    };

    internal static double D(ActivationKind k, double slope, double x)
    {
        switch (k)
        {
            case ActivationKind.Relu: return x > 0 ? 1 : 0;
            case ActivationKind.LeakyRelu: return x > 0 ? 1 : slope;
            case ActivationKind.Silu: { double s = 1 / (1 + Math.Exp(-x)); return s * (1 + x * (1 - s)); }
            case ActivationKind.Sigmoid: { double s = 1 / (1 + Math.Exp(-x)); return s * (1 - s); }
            default: throw new ArgumentOutOfRangeException(nameof(k));
        }
    }

    public static void Forward(RefCall c)
    {
        var a = c.A<ActivationAttrs>();
        for (int i = 0; i < c.In[0].Length; i++) c.Out[0][i] = F(a.Kind, a.Slope, c.In[0][i]);
    }

    public static void Backward(RefCall c)
    {
        var a = c.A<ActivationAttrs>();
        for (int i = 0; i < c.In[0].Length; i++) c.Out[0][i] = c.In[1][i] * D(a.Kind, a.Slope, c.In[0][i]);
    }
}
