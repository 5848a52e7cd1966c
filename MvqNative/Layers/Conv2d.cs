// Layer: 2-D convolution (NCHW, square kernel) over the conv2d_forward / conv2d_backward ops.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// 2-D convolution: x [B, inChannels, H, W] -> y [B, outChannels, Ho, Wo], Ho = (H + 2P - k) / S + 1.
/// Parameters <c>weight</c> [out, in, k, k] and <c>bias</c> [out] (no weight decay), both
/// initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * k * k, as PyTorch does.
/// Forward keeps a reference to x (valid until its producer's next call) for Backward.
/// </summary>
internal sealed class Conv2d : Module
{
    private readonly Conv2dAttrs _attrs;
    private Tensor? _x;

    /// <param name="backend">Device of the parameters and activations.</param>
    /// <param name="inChannels">Cin.</param>
    /// <param name="outChannels">Cout.</param>
    /// <param name="kernel">Kernel side k (square).</param>
    /// <param name="stride">Stride S on both axes.</param>
    /// <param name="padding">Zero padding P on every side.</param>
    /// <param name="rng">Initialisation source; null uses a fixed seed (0).</param>
    public Conv2d(Backend backend, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, Random? rng = null)
        : base(backend)
    {
        if (inChannels < 1 || outChannels < 1 || kernel < 1) throw new ArgumentOutOfRangeException(nameof(kernel), $"conv2d {inChannels}->{outChannels} k{kernel}: sizes must be positive");
        if (stride < 1 || padding < 0) throw new ArgumentOutOfRangeException(nameof(stride), $"conv2d: stride {stride} / padding {padding}");
        InChannels = inChannels; OutChannels = outChannels; Kernel = kernel;
        _attrs = new Conv2dAttrs(stride, padding);
        rng ??= new Random(0);
        float bound = 1f / MathF.Sqrt(inChannels * kernel * kernel);
        Weight = AddParameter("weight", Uniform(backend, rng, bound, outChannels, inChannels, kernel, kernel));
        Bias = AddParameter("bias", Uniform(backend, rng, bound, outChannels), decay: false);
    }

    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }
    public int Stride => _attrs.Stride;
    public int Padding => _attrs.Padding;
    /// <summary>[out, in, k, k].</summary>
    public Parameter Weight { get; }
    /// <summary>[out].</summary>
    public Parameter Bias { get; }

    /// <summary>x [B, in, H, W] -> y [B, out, Ho, Wo] (arena buffer).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4 || x.Dim(1) != InChannels)
            throw new ArgumentException($"Conv2d({InChannels}->{OutChannels}) expects [B,{InChannels},H,W], got [{x.ShapeString}]");
        _x = x;
        var y = Arena.Get("y", x.Dim(0), OutChannels, _attrs.OutSize(x.Dim(2), Kernel), _attrs.OutSize(x.Dim(3), Kernel));
        ConvOps.Forward.Run(Backend, [x, Weight.Value, Bias.Value], [y], _attrs);
        return y;
    }

    /// <summary>dy [B, out, Ho, Wo] -> dx [B, in, H, W] (written); weight and bias gradients accumulate.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var x = _x ?? throw new InvalidOperationException("Conv2d.Backward before Forward");
        var dx = Arena.Get("dx", x.Shape);
        ConvOps.BackwardOp.Run(Backend, [x, Weight.Value, dy], [dx, Weight.Grad, Bias.Grad], _attrs);
        return dx;
    }

    private static Tensor Uniform(Backend backend, Random rng, float bound, params int[] shape)
    {
        int n = 1; foreach (var d in shape) n *= d;
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        return backend.FromArray(a, shape);
    }
}
