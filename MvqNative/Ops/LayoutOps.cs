// Op family: layout changes between NCHW images and token matrices [B*H*W, C], each the
// other's backward, with float64 references. CPU kernels: Backends/Cpu/Kernels/CpuLayout.cs.
using System.Runtime.CompilerServices;
using MvqNative.Backends.Cpu;
using MvqNative.Conformance;
using static MvqNative.Conformance.TensorSpec;

namespace MvqNative.Ops;

/// <summary>
/// NCHW &lt;-&gt; tokens. nchw_to_tokens: [x(B,C,H,W)] -> [t(B*H*W, C)], t[(b*H+i)*W+j, c] = x[b,c,i,j].
/// tokens_to_nchw: [t(B*H*W, C)] -> [x(B,C,H,W)], the inverse. The output tensor's shape
/// carries B, H and W, so there are no attributes. Each op is the other's backward.
/// </summary>
internal static class LayoutOps
{
    public static readonly OpDef NchwToTokens = new("nchw_to_tokens")
    {
        Inputs = [Arg.In("x")],
        Outputs = [Arg.Write("t")],
        Shapes = (in OpCall c) => Check(c.In[0].Shape, c.Out[0].Shape),
        Cpu = CpuLayout.NchwToTokens,
        Cuda = Backends.Cuda.Kernels.CudaLayout.NchwToTokens,
        Reference = RefLayout.NchwToTokens,
        Grad = GradSpec.By("tokens_to_nchw", [GradArg.Dy(0)], 0),
        Doc = "t(B*H*W, C)[(b*H+i)*W+j, c] = x(B,C,H,W)[b,c,i,j]",
        Cases = [new OpCase("odd", [F(2, 3, 5, 7)], [Out(70, 3)]), new OpCase("size1", [F(1, 1, 1, 1)], [Out(1, 1)]),
                 new OpCase("tiles", [F(3, 37, 6, 11)], [Out(198, 37)])],
    };

    public static readonly OpDef TokensToNchw = new("tokens_to_nchw")
    {
        Inputs = [Arg.In("t")],
        Outputs = [Arg.Write("x")],
        Shapes = (in OpCall c) => Check(c.Out[0].Shape, c.In[0].Shape),
        Cpu = CpuLayout.TokensToNchw,
        Cuda = Backends.Cuda.Kernels.CudaLayout.TokensToNchw,
        Reference = RefLayout.TokensToNchw,
        Grad = GradSpec.By("nchw_to_tokens", [GradArg.Dy(0)], 0),
        Doc = "x(B,C,H,W)[b,c,i,j] = t(B*H*W, C)[(b*H+i)*W+j, c]",
        Cases = [new OpCase("odd", [F(70, 3)], [Out(2, 3, 5, 7)]), new OpCase("size1", [F(1, 1)], [Out(1, 1, 1, 1)]),
                 new OpCase("tiles", [F(198, 37)], [Out(3, 37, 6, 11)])],
    };

    /// <summary>Checks that tokens are [B*H*W, C] for the image shape; returns (B, C, H*W).</summary>
    internal static (int B, int C, int Hw) Check(ReadOnlySpan<int> image, ReadOnlySpan<int> tokens)
    {
        if (image.Length != 4 || tokens.Length != 2 || tokens[1] != image[1] || tokens[0] != image[0] * image[2] * image[3])
            throw new ArgumentException($"tokens [{string.Join(',', tokens.ToArray())}] do not match image [{string.Join(',', image.ToArray())}] (want [B*H*W, C])");
        return (image[0], image[1], image[2] * image[3]);
    }

#pragma warning disable CA2255 // module initializers are how op families register themselves
    [ModuleInitializer]
    internal static void Register() => OpRegistry.Add(NchwToTokens, TokensToNchw);
#pragma warning restore CA2255
}

/// <summary>Float64 plain-loop layout changes.</summary>
internal static class RefLayout
{
    public static void NchwToTokens(RefCall c)
    {
        var (b, ch, hw) = LayoutOps.Check(c.InShapes[0], c.OutShapes[0]);
        for (int n = 0; n < b; n++)
            for (int k = 0; k < ch; k++)
                for (int p = 0; p < hw; p++)
                    c.Out[0][(n * hw + p) * ch + k] = c.In[0][(n * ch + k) * hw + p];
    }

    public static void TokensToNchw(RefCall c)
    {
        var (b, ch, hw) = LayoutOps.Check(c.OutShapes[0], c.InShapes[0]);
        for (int n = 0; n < b; n++)
            for (int k = 0; k < ch; k++)
                for (int p = 0; p < hw; p++)
                    c.Out[0][(n * ch + k) * hw + p] = c.In[0][(n * hw + p) * ch + k];
    }
}
