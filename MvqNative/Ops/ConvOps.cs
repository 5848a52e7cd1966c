// Op family: 2-D convolution (square kernels, NCHW), forward and backward, with the
// shape rules shared by the CPU kernels (Backends/Cpu/Kernels/CpuConv.cs) and the
// float64 reference below.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>Attributes of the conv2d ops: stride and zero padding, the same on both axes.</summary>
internal sealed record Conv2dAttrs(int Stride, int Padding)
{
    /// <summary>Output size of one spatial axis: (n + 2P - k) / S + 1.</summary>
    public int OutSize(int n, int kernel) => (n + 2 * Padding - kernel) / Stride + 1;
}

/// <summary>Sizes of one conv2d call, checked against each other.</summary>
internal readonly record struct ConvShape(int B, int Cin, int H, int W, int Cout, int K, int S, int P, int Ho, int Wo)
{
    /// <summary>Rows of the im2col matrix: Cin * k * k.</summary>
    public int Rows => Cin * K * K;
    /// <summary>Output pixels per image (columns of the im2col matrix).</summary>
    public int Pixels => Ho * Wo;
    /// <summary>1x1, stride 1, no padding: the input image already is the im2col matrix.</summary>
    public bool Pointwise => K == 1 && S == 1 && P == 0;

    public static ConvShape Of(ReadOnlySpan<int> x, ReadOnlySpan<int> w, Conv2dAttrs a)
    {
        if (x.Length != 4) throw new ArgumentException($"x must be [B,Cin,H,W], got {ShapeText.Of(x)}");
        if (w.Length != 4) throw new ArgumentException($"w must be [Cout,Cin,k,k], got {ShapeText.Of(w)}");
        if (w[1] != x[1]) throw new ArgumentException($"w has {w[1]} input channels, x has {x[1]}");
        if (w[2] != w[3]) throw new ArgumentException($"kernel must be square, got {w[2]}x{w[3]}");
        if (a.Stride < 1 || a.Padding < 0) throw new ArgumentException($"bad stride {a.Stride} / padding {a.Padding}");
        int k = w[2];
        if (k < 1) throw new ArgumentException("empty kernel");
        int ho = a.OutSize(x[2], k), wo = a.OutSize(x[3], k);
        if (x[2] + 2 * a.Padding < k || x[3] + 2 * a.Padding < k)
            throw new ArgumentException($"kernel {k} larger than padded input {x[2]}x{x[3]} (padding {a.Padding})");
        return new ConvShape(x[0], x[1], x[2], x[3], w[0], k, a.Stride, a.Padding, ho, wo);
    }

    public void CheckOut(ReadOnlySpan<int> y, string name)
    {
        if (y.Length != 4 || y[0] != B || y[1] != Cout || y[2] != Ho || y[3] != Wo)
            throw new ArgumentException($"{name} must be [{B},{Cout},{Ho},{Wo}], got [{string.Join(',', y.ToArray())}]");
    }

    public void CheckBias(ReadOnlySpan<int> b, string name)
    {
        if (b.Length != 1 || b[0] != Cout) throw new ArgumentException($"{name} must be [{Cout}], got [{string.Join(',', b.ToArray())}]");
    }
}

/// <summary>
/// 2-D convolution, NCHW, weight [Cout, Cin, k, k], zero padding P, stride S,
/// Ho = (H + 2P - k) / S + 1.
/// forward: in [x(B,Cin,H,W), w(Cout,Cin,k,k), b(Cout)], out [y(B,Cout,Ho,Wo)],
///   y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n,c,iS-P+u, jS-P+v].
/// backward: in [x, w, dy(B,Cout,Ho,Wo)], out [dx (written), dw (accumulates), db (accumulates)].
/// CPU: im2col + GEMM per image, parallel over the batch; dw/db reduced from fixed
/// per-chunk partials in chunk order, so they are bit-reproducible for a given thread count.
/// </summary>
internal static class ConvOps
{
    private static OpCase Fwd(string label, int b, int cin, int h, int w, int cout, int k, int s, int p)
    {
        var a = new Conv2dAttrs(s, p);
        return new OpCase(label, [F(b, cin, h, w), F(cout, cin, k, k), F(cout)], [Out(b, cout, a.OutSize(h, k), a.OutSize(w, k))], a);
    }

    private static OpCase Bwd(string label, int b, int cin, int h, int w, int cout, int k, int s, int p)
    {
        var a = new Conv2dAttrs(s, p);
        return new OpCase(label, [F(b, cin, h, w), F(cout, cin, k, k), F(b, cout, a.OutSize(h, k), a.OutSize(w, k))],
            [Out(b, cin, h, w), F(cout, cin, k, k), F(cout)], a);
    }

    // Geometries shared by forward and backward: odd sizes, strides 1 and 2, padding 0/1,
    // the pointwise fast path, a kernel as large as the padded input, size 1, and a batch
    // larger than the thread count so the chunked reduction of dw/db runs; the CPU backward's stride-1 same-size path
    // with one output channel and with k = 5.
    private static readonly (string Label, int B, int Cin, int H, int W, int Cout, int K, int S, int P)[] Geometries =
    [
        ("3x3 s1 p1 odd", 2, 3, 7, 5, 4, 3, 1, 1),
        ("3x3 s2 p1 odd", 3, 2, 9, 7, 5, 3, 2, 1),
        ("3x3 s1 p0 odd", 2, 3, 6, 7, 2, 3, 1, 0),
        ("4x4 s2 p1", 1, 3, 8, 6, 4, 4, 2, 1),
        ("1x1 s1 pointwise", 2, 5, 3, 3, 3, 1, 1, 0),
        ("1x1 s2", 2, 3, 5, 5, 2, 1, 2, 0),
        ("3x3 on 1x1 p1", 1, 2, 1, 1, 3, 3, 1, 1),
        ("size1", 1, 1, 1, 1, 1, 1, 1, 0),
        ("batch 37", 37, 3, 5, 4, 6, 3, 1, 1),
        // The CPU backward's stride-1 same-size path (dx as a convolution of dy): one output channel, and k = 5.
        ("3x3 s1 p1 one output", 3, 4, 6, 5, 1, 3, 1, 1),
        ("5x5 s1 p2", 2, 2, 6, 7, 3, 5, 1, 2),
    ];

    public static readonly OpDef Forward = new("conv2d_forward")
    {
        Inputs = [Arg.In("x"), Arg.In("w"), Arg.In("b")],
        Outputs = [Arg.Write("y")],
        AttrsType = typeof(Conv2dAttrs),
        Shapes = (in OpCall c) =>
        {
            var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
            s.CheckBias(c.In[2].Shape, "b");
            s.CheckOut(c.Out[0].Shape, "y");
        },
        Cpu = CpuConv.Forward,
        Cuda = Backends.Cuda.Kernels.CudaConv.Forward,
        Reference = RefConv.Forward,
        Grad = GradSpec.By("conv2d_backward", [GradArg.In(0), GradArg.In(1), GradArg.Dy(0)], 0, 1, 2),
        Doc = "y(B,Cout,Ho,Wo) = conv(x(B,Cin,H,W), w(Cout,Cin,k,k)) + b(Cout); stride S, zero padding P",
        Cases = [.. Geometries.Select(g => Fwd(g.Label, g.B, g.Cin, g.H, g.W, g.Cout, g.K, g.S, g.P))],
    };

    public static readonly OpDef BackwardOp = new("conv2d_backward")
    {
        Inputs = [Arg.In("x"), Arg.In("w"), Arg.In("dy")],
        Outputs = [Arg.Write("dx"), Arg.Acc("dw"), Arg.Acc("db")],
        AttrsType = typeof(Conv2dAttrs),
        Shapes = (in OpCall c) =>
        {
            var s = ConvShape.Of(c.In[0].Shape, c.In[1].Shape, c.A<Conv2dAttrs>());
            s.CheckOut(c.In[2].Shape, "dy");
            ShapeText.SameShape(c.Out[0], "dx", c.In[0], "x");
            ShapeText.SameShape(c.Out[1], "dw", c.In[1], "w");
            s.CheckBias(c.Out[2].Shape, "db");
        },
        Cpu = CpuConv.Backward,
        Cuda = Backends.Cuda.Kernels.CudaConv.Backward,
        Reference = RefConv.Backward,
        Doc = "[x, w, dy] -> dx = conv_transpose(dy, w) (written); dw += dy (x) x, db += sum dy (accumulate)",
        Cases = [.. Geometries.Select(g => Bwd(g.Label, g.B, g.Cin, g.H, g.W, g.Cout, g.K, g.S, g.P))],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Forward, BackwardOp);
#pragma warning restore CA2255
}

/// <summary>Float64 plain-loop conv2d: the ground truth for the conformance table and gradient checks.</summary>
internal static class RefConv
{
    public static void Forward(RefCall c)
    {
        var s = ConvShape.Of(c.InShapes[0], c.InShapes[1], c.A<Conv2dAttrs>());
        double[] x = c.In[0], w = c.In[1], b = c.In[2], y = c.Out[0];
        for (int n = 0; n < s.B; n++)
            for (int o = 0; o < s.Cout; o++)
                for (int i = 0; i < s.Ho; i++)
                    for (int j = 0; j < s.Wo; j++)
                    {
                        double acc = b[o];
                        for (int ci = 0; ci < s.Cin; ci++)
                            for (int u = 0; u < s.K; u++)
                            {
                                int ih = i * s.S - s.P + u;
                                if (ih < 0 || ih >= s.H) continue;
                                for (int v = 0; v < s.K; v++)
                                {
                                    int iw = j * s.S - s.P + v;
                                    if (iw < 0 || iw >= s.W) continue;
                                    acc += w[((o * s.Cin + ci) * s.K + u) * s.K + v] * x[((n * s.Cin + ci) * s.H + ih) * s.W + iw];
                                }
                            }
                        y[((n * s.Cout + o) * s.Ho + i) * s.Wo + j] = acc;
                    }
    }

    public static void Backward(RefCall c)
    {
        var s = ConvShape.Of(c.InShapes[0], c.InShapes[1], c.A<Conv2dAttrs>());
        double[] x = c.In[0], w = c.In[1], dy = c.In[2], dx = c.Out[0], dw = c.Out[1], db = c.Out[2];
        Array.Clear(dx);
        for (int n = 0; n < s.B; n++)
            for (int o = 0; o < s.Cout; o++)
                for (int i = 0; i < s.Ho; i++)
                    for (int j = 0; j < s.Wo; j++)
                    {
                        double g = dy[((n * s.Cout + o) * s.Ho + i) * s.Wo + j];
                        db[o] += g;
                        for (int ci = 0; ci < s.Cin; ci++)
                            for (int u = 0; u < s.K; u++)
                            {
                                int ih = i * s.S - s.P + u;
                                if (ih < 0 || ih >= s.H) continue;
                                for (int v = 0; v < s.K; v++)
                                {
                                    int iw = j * s.S - s.P + v;
                                    if (iw < 0 || iw >= s.W) continue;
                                    int xi = ((n * s.Cin + ci) * s.H + ih) * s.W + iw;
                                    int wi = ((o * s.Cin + ci) * s.K + u) * s.K + v;
                                    dw[wi] += g * x[xi];
                                    dx[xi] += g * w[wi];
                                }
                            }
                    }
    }
}
