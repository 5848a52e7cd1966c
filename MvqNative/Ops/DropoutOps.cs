// Op family: dropout (inverted, counter-based mask). CPU: Backends/Cpu/Kernels/CpuDropout.cs; CUDA: native/kernels/dropout.cu.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// Attributes of <see cref="DropoutOps.Apply"/>: drop probability <paramref name="P"/> in [0, 1) and a 32-bit
/// <paramref name="Seed"/> (the caller mixes its run seed, layer and step into it).
/// </summary>
internal sealed record DropoutAttrs(float P, uint Seed)
{
    /// <summary>An element is kept when the top 24 bits of its hash are at least this (round(p * 2^24)).</summary>
    public uint Threshold => (uint)Math.Round((double)P * (1 << 24));

    /// <summary>1 / (1 - p), rounded to float once, so every backend multiplies by the same value.</summary>
    public float Scale => (float)(1.0 / (1.0 - P));
}

/// <summary>
/// dropout: in [x] out [y (=)], y = keep(i) ? x * 1/(1-p) : 0 with keep(i) a hash of (seed, i), the same on every
/// backend. The map is diagonal, so it is its own adjoint: the backward pass is this op on dy with the same seed.
/// </summary>
internal static class DropoutOps
{
    public static readonly OpDef Apply = new("dropout")
    {
        Inputs = [Arg.In("x")],
        Outputs = [Arg.Write("y")],
        AttrsType = typeof(DropoutAttrs),
        Shapes = (in OpCall c) =>
        {
            ShapeText.Length(c.Out[0], "y", c.In[0].Length);
            var p = c.A<DropoutAttrs>().P;
            if (!(p >= 0 && p < 1)) throw new ArgumentException($"dropout: p = {p} is outside [0, 1)");
        },
        Cpu = CpuDropout.Apply,
        Cuda = Backends.Cuda.Kernels.CudaDropout.Apply,
        Reference = RefDropout.Apply,
        Grad = GradSpec.By("dropout", [GradArg.Dy(0)], 0), // self-adjoint: the same mask and scale on dy
        Doc = "y = keep(seed, i) ? x / (1 - p) : 0 (self-adjoint: backward is the same op on dy)",
        Cases =
        [
            new OpCase("odd p0.1", [F(3, 7, 5)], [Out(3, 7, 5)], new DropoutAttrs(0.1f, 12345u)) { Tolerance = 1e-12 },
            new OpCase("p0.5 tails", [F(1031)], [Out(1031)], new DropoutAttrs(0.5f, 0xDEADBEEFu)) { Tolerance = 1e-12 },
            new OpCase("p0 identity", [F(17)], [Out(17)], new DropoutAttrs(0f, 7u)) { Tolerance = 1e-12 },
            new OpCase("size1", [F(1)], [Out(1)], new DropoutAttrs(0.3f, 1u)) { Tolerance = 1e-12 },
        ],
    };

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(Apply);
#pragma warning restore CA2255
}

internal static class RefDropout
{
    public static void Apply(RefCall c)
    {
        var a = c.A<DropoutAttrs>();
        double scale = 1.0 / (1.0 - a.P);
        for (int i = 0; i < c.In[0].Length; i++)
            c.Out[0][i] = CpuDropout.Keep(a.Seed, (uint)i, a.Threshold) ? c.In[0][i] * scale : 0;
    }
}
