// Op family: nearest-neighbour 2x upsampling of NCHW images, forward and backward,
// with its float64 reference. CPU kernels: Backends/Cpu/Kernels/CpuUpsample.cs.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Nearest 2x upsampling. forward: [x(B,C,H,W)] -> [y(B,C,2H,2W)], y[.., i, j] = x[.., i/2, j/2].
/// backward: [dy(B,C,2H,2W)] -> [dx(B,C,H,W)] (written), dx[.., i, j] = sum of the 2x2 block of dy.
/// No attributes.
/// </summary>
internal static class UpsampleOps
{
    public static readonly OpDef Forward = new("upsample_nearest2x_forward")
    {
        Inputs = [Arg.In("x")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) => Check(c.In[0].Shape, c.Out[0].Shape),
        Cpu = CpuUpsample.Forward,
        Cuda = Backends.Cuda.Kernels.CudaUpsample.Forward,
        Reference = RefUpsample.Forward,
        Grad = GradSpec.By("upsample_nearest2x_backward", [GradArg.Dy(0)], 0),
        Doc = "y(B,C,2H,2W)[i,j] = x(B,C,H,W)[i/2,j/2]",
        Cases = [new OpCase("odd", [F(2, 3, 5, 7)], [Out(2, 3, 10, 14)]), new OpCase("size1", [F(1, 1, 1, 1)], [Out(1, 1, 2, 2)]),
                 new OpCase("one row", [F(3, 1, 1, 9)], [Out(3, 1, 2, 18)]), new OpCase("many planes", [F(4, 9, 7, 5)], [Out(4, 9, 14, 10)])],
    };

    public static readonly OpDef BackwardOp = new("upsample_nearest2x_backward")
    {
        Inputs = [Arg.In("dy")],
        Outputs = [Arg.Write("dx")],
        Shapes = (in OpCall c) => Check(c.Out[0].Shape, c.In[0].Shape),
        Cpu = CpuUpsample.Backward,
        Cuda = Backends.Cuda.Kernels.CudaUpsample.Backward,
        Reference = RefUpsample.Backward,
        Doc = "dx(B,C,H,W)[i,j] = sum of dy(B,C,2H,2W) over the 2x2 block at (2i, 2j)",
        Cases = [new OpCase("odd", [F(2, 3, 10, 14)], [Out(2, 3, 5, 7)]), new OpCase("size1", [F(1, 1, 2, 2)], [Out(1, 1, 1, 1)]),
                 new OpCase("one row", [F(3, 1, 2, 18)], [Out(3, 1, 1, 9)]), new OpCase("many planes", [F(4, 9, 14, 10)], [Out(4, 9, 7, 5)])],
    };

    /// <summary>Checks that <paramref name="big"/> is <paramref name="small"/> with H and W doubled; returns (planes, H, W) of the small one.</summary>
    internal static (int Planes, int H, int W) Check(ReadOnlySpan<int> small, ReadOnlySpan<int> big)
    {
        if (small.Length != 4 || big.Length != 4 || small[0] != big[0] || small[1] != big[1] || big[2] != 2 * small[2] || big[3] != 2 * small[3])
            throw new ArgumentException($"[{string.Join(',', big.ToArray())}] is not [{string.Join(',', small.ToArray())}] with H and W doubled");
        return (small[0] * small[1], small[2], small[3]);
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Float64 plain-loop nearest 2x upsampling.</summary>
internal static class RefUpsample
{
    public static void Forward(RefCall c)
    {
        var (planes, h, w) = UpsampleOps.Check(c.InShapes[0], c.OutShapes[0]);
        double[] x = c.In[0], y = c.Out[0];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    y[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
    }

    public static void Backward(RefCall c)
    {
        var (planes, h, w) = UpsampleOps.Check(c.OutShapes[0], c.InShapes[0]);
        double[] dy = c.In[0], dx = c.Out[0];
        Array.Clear(dx);
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    dx[(p * h + i / 2) * w + j / 2] += dy[(p * 2 * h + i) * 2 * w + j];
    }
}
