// Op family: fully connected layer (y = x w^T + b), forward and backward, with its
// float64 reference. CPU kernels: Backends/Cpu/Kernels/CpuLinear.cs.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Linear map, PyTorch layout (weight [out, in]).
/// forward: in [x(N,in), w(out,in), b(out)], out [y(N,out)], y = x w^T + b.
/// backward: in [x, w, dy(N,out)], out [dx(N,in) written, dw(out,in) accumulates, db(out) accumulates]:
/// dx = dy w, dw += dy^T x, db += column sums of dy. No attributes.
/// </summary>
internal static class LinearOps
{
    private static readonly (string Label, int N, int In, int Out)[] Sizes =
    [
        ("odd", 5, 7, 3),
        ("wide", 33, 17, 13),
        ("size1", 1, 1, 1),
        ("one row", 1, 9, 4),
        ("one output", 11, 6, 1),
        // CUDA: more than 32 output columns (two column-sum blocks) and more than 8 rows per phase.
        ("two column blocks", 19, 5, 37),
    ];

    public static readonly OpDef Forward = new("linear_forward")
    {
        Inputs = [Arg.In("x"), Arg.In("w"), Arg.In("b")],
        Outputs = [Arg.Write("y")],
        Shapes = (in OpCall c) =>
        {
            var (n, _, fout) = Sizes3(c.In[0].Shape, c.In[1].Shape);
            ShapeText.Require(c.In[2], "b", fout);
            ShapeText.Require(c.Out[0], "y", n, fout);
        },
        Cpu = CpuLinear.Forward,
        Cuda = Backends.Cuda.Kernels.CudaLinear.Forward,
        Reference = RefLinear.Forward,
        Grad = GradSpec.By("linear_backward", [GradArg.In(0), GradArg.In(1), GradArg.Dy(0)], 0, 1, 2),
        Doc = "y(N,out) = x(N,in) w(out,in)^T + b(out)",
        Cases = [.. Sizes.Select(s => new OpCase(s.Label, [F(s.N, s.In), F(s.Out, s.In), F(s.Out)], [Out(s.N, s.Out)]))],
    };

    public static readonly OpDef BackwardOp = new("linear_backward")
    {
        Inputs = [Arg.In("x"), Arg.In("w"), Arg.In("dy")],
        Outputs = [Arg.Write("dx"), Arg.Acc("dw"), Arg.Acc("db")],
        Shapes = (in OpCall c) =>
        {
            var (n, fin, fout) = Sizes3(c.In[0].Shape, c.In[1].Shape);
            ShapeText.Require(c.In[2], "dy", n, fout);
            ShapeText.Require(c.Out[0], "dx", n, fin);
            ShapeText.Require(c.Out[1], "dw", fout, fin);
            ShapeText.Require(c.Out[2], "db", fout);
        },
        Cpu = CpuLinear.Backward,
        Cuda = Backends.Cuda.Kernels.CudaLinear.Backward,
        Reference = RefLinear.Backward,
        Doc = "[x, w, dy] -> dx = dy w (written); dw += dy^T x, db += sum_n dy (accumulate)",
        Cases = [.. Sizes.Select(s => new OpCase(s.Label, [F(s.N, s.In), F(s.Out, s.In), F(s.N, s.Out)], [Out(s.N, s.In), F(s.Out, s.In), F(s.Out)]))],
    };

    /// <summary>Checks shapes; returns (N, in, out).</summary>
    internal static (int N, int In, int Out) Sizes3(ReadOnlySpan<int> x, ReadOnlySpan<int> w)
    {
        if (x.Length != 2) throw new ArgumentException($"x must be [N,in], got {ShapeText.Of(x)}");
        if (w.Length != 2) throw new ArgumentException($"w must be [out,in], got {ShapeText.Of(w)}");
        if (w[1] != x[1]) throw new ArgumentException($"w {ShapeText.Of(w)} takes {w[1]} features, x {ShapeText.Of(x)} has {x[1]}");
        return (x[0], x[1], w[0]);
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Float64 plain-loop linear: the ground truth.</summary>
internal static class RefLinear
{
    public static void Forward(RefCall c)
    {
        var (n, fin, fout) = LinearOps.Sizes3(c.InShapes[0], c.InShapes[1]);
        double[] x = c.In[0], w = c.In[1], b = c.In[2], y = c.Out[0];
        for (int r = 0; r < n; r++)
            for (int o = 0; o < fout; o++)
            {
                double acc = b[o];
                for (int i = 0; i < fin; i++) acc += x[r * fin + i] * w[o * fin + i];
                y[r * fout + o] = acc;
            }
    }

    public static void Backward(RefCall c)
    {
        var (n, fin, fout) = LinearOps.Sizes3(c.InShapes[0], c.InShapes[1]);
        double[] x = c.In[0], w = c.In[1], dy = c.In[2], dx = c.Out[0], dw = c.Out[1], db = c.Out[2];
        Array.Clear(dx);
        for (int r = 0; r < n; r++)
            for (int o = 0; o < fout; o++)
            {
                double g = dy[r * fout + o];
                db[o] += g;
                for (int i = 0; i < fin; i++)
                {
                    dx[r * fin + i] += g * w[o * fin + i];
                    dw[o * fin + i] += g * x[r * fin + i];
                }
            }
    }
}
