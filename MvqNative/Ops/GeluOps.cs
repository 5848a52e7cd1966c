// GELU (tanh approximation) ops of the prior: gelu_forward / gelu_backward with their float64 reference.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// GELU, tanh approximation (PyTorch's GELU(approximate='tanh'), GPT-2's), pointwise, any shape.
/// forward: in [x] out [y], y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
/// backward: in [x, dy] out [dx (=)], dx = dy (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)), t = tanh(u).
/// </summary>
internal static class GeluOps
{
    internal const double K0 = 0.7978845608028654; // sqrt(2 / pi)
    internal const double K1 = 0.044715;

    public static readonly OpDef Forward = new("gelu_forward")
    {
        Inputs = [Arg.In("x")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) => ShapeText.Length(c.Out[0], "y", c.In[0].Length),
        Cpu = CpuGelu.Forward,
        Cuda = Backends.Cuda.Kernels.CudaGelu.Forward,
        Reference = RefGelu.Forward,
        Grad = GradSpec.By("gelu_backward", [GradArg.In(0), GradArg.Dy(0)], 0),
        Doc = "y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
        Cases =
        [
            new OpCase("odd", [F(3, 7, 5)], [Out(3, 7, 5)]) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1)], [Out(1)]) { Tolerance = 1e-12 },
            // Large |x| (tanh saturates: no NaN from exp overflow) and every vector tail length.
            new OpCase("range", [new TensorSpec([1031], Lo: -30f, Hi: 30f)], [Out(1031)]) { Tolerance = 1e-12 },
        ],
    };

    public static readonly OpDef BackwardOp = new("gelu_backward")
    {
        Inputs = [Arg.In("x"), Arg.In("dy")],
        Outputs = [Arg.Write("dx")],
        Shapes = (in OpCall c) => { ShapeText.Length(c.In[1], "dy", c.In[0].Length); ShapeText.Length(c.Out[0], "dx", c.In[0].Length); },
        Cpu = CpuGelu.Backward,
        Cuda = Backends.Cuda.Kernels.CudaGelu.Backward,
        Reference = RefGelu.Backward,
        Doc = "dx = dy * gelu'(x) (from x)",
        Cases =
        [
            new OpCase("odd", [F(3, 7, 5), F(3, 7, 5)], [Out(3, 7, 5)]) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1), F(1)], [Out(1)]) { Tolerance = 1e-12 },
            new OpCase("range", [new TensorSpec([1031], Lo: -30f, Hi: 30f), F(1031)], [Out(1031)]) { Tolerance = 1e-12 },
        ],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

internal static class RefGelu
{
    internal static double F(double x) => 0.5 * x * (1 + Math.Tanh(GeluOps.K0 * (x + GeluOps.K1 * x * x * x)));

    internal static double D(double x)
    {
        double t = Math.Tanh(GeluOps.K0 * (x + GeluOps.K1 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GeluOps.K0 * (1 + 3 * GeluOps.K1 * x * x);
    }

    public static void Forward(RefCall c)
    {
        for (int i = 0; i < c.In[0].Length; i++) c.Out[0][i] = F(c.In[0][i]);
    }

    public static void Backward(RefCall c)
    {
        for (int i = 0; i < c.In[0].Length; i++) c.Out[0][i] = c.In[1][i] * D(c.In[0][i]);
    }
}
