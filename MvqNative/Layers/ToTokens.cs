// Layer: NCHW image -> token matrix [B*H*W, C] (one token per pixel).
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// x [B, C, H, W] -> t [B*H*W, C], token (b*H + i)*W + j holding pixel (i, j) of image b.
/// Remembers the image shape for Backward (and for <see cref="Height"/>, <see cref="Width"/>).
/// </summary>
internal sealed class ToTokens : Module
{
    private int[] _shape = [];

    public ToTokens(Backend backend) : base(backend) { }

    /// <summary>H of the last forward input (0 before the first call).</summary>
    public int Height => _shape.Length == 4 ? _shape[2] : 0;
    /// <summary>W of the last forward input (0 before the first call).</summary>
    public int Width => _shape.Length == 4 ? _shape[3] : 0;

    /// <summary>x [B, C, H, W] -> t [B*H*W, C] (arena buffer).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4) throw new ArgumentException($"ToTokens expects [B,C,H,W], got [{x.ShapeString}]");
        _shape = x.Shape;
        var t = Arena.Get("t", x.Dim(0) * x.Dim(2) * x.Dim(3), x.Dim(1));
        LayoutOps.NchwToTokens.Run(Backend, [x], [t]);
        return t;
    }

    /// <summary>dt [B*H*W, C] -> dx [B, C, H, W].</summary>
    public override Tensor Backward(Tensor dy)
    {
        if (_shape.Length != 4) throw new InvalidOperationException("ToTokens.Backward before Forward");
        var dx = Arena.Get("dx", _shape);
        LayoutOps.TokensToNchw.Run(Backend, [dy], [dx]);
        return dx;
    }
}
