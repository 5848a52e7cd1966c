// Layer: nearest-neighbour 2x upsampling of NCHW images.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>x [B, C, H, W] -> y [B, C, 2H, 2W], each pixel repeated in a 2x2 block; no parameters.</summary>
internal sealed class Upsample2x : Module
{
    public Upsample2x(Backend backend) : base(backend) { }

    /// <summary>x [B, C, H, W] -> y [B, C, 2H, 2W] (arena buffer).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 4) throw new ArgumentException($"Upsample2x expects [B,C,H,W], got [{x.ShapeString}]");
        var y = Arena.Get("y", x.Dim(0), x.Dim(1), 2 * x.Dim(2), 2 * x.Dim(3));
        UpsampleOps.Forward.Run(Backend, [x], [y]);
        return y;
    }

    /// <summary>dy [B, C, 2H, 2W] -> dx [B, C, H, W]: the sum over each 2x2 block.</summary>
    public override Tensor Backward(Tensor dy)
    {
        if (dy.Rank != 4 || dy.Dim(2) % 2 != 0 || dy.Dim(3) % 2 != 0)
            throw new ArgumentException($"Upsample2x.Backward expects [B,C,2H,2W], got [{dy.ShapeString}]");
        var dx = Arena.Get("dx", dy.Dim(0), dy.Dim(1), dy.Dim(2) / 2, dy.Dim(3) / 2);
        UpsampleOps.BackwardOp.Run(Backend, [dy], [dx]);
        return dx;
    }
}
