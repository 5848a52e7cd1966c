// Layer: token matrix [B*H*W, C] -> NCHW image, the inverse of ToTokens.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>t [B*H*W, C] -> x [B, C, H, W] for a fixed H and W given at construction; B = rows / (H*W).</summary>
internal sealed class FromTokens : Module
{
    /// <param name="backend">Device of the activations.</param>
    /// <param name="height">H of the images the tokens came from.</param>
    /// <param name="width">W of the images the tokens came from.</param>
    public FromTokens(Backend backend, int height, int width) : base(backend)
    {
        if (height < 1 || width < 1) throw new ArgumentOutOfRangeException(nameof(height), $"FromTokens: image size {height}x{width}");
        Height = height; Width = width;
    }

    public int Height { get; }
    public int Width { get; }

    /// <summary>t [B*H*W, C] -> x [B, C, H, W] (arena buffer).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 2 || x.Dim(0) % (Height * Width) != 0)
            throw new ArgumentException($"FromTokens({Height}x{Width}) expects [B*{Height * Width}, C], got [{x.ShapeString}]");
        var y = Arena.Get("y", x.Dim(0) / (Height * Width), x.Dim(1), Height, Width);
        LayoutOps.TokensToNchw.Run(Backend, [x], [y]);
        return y;
    }

    /// <summary>dx [B, C, H, W] -> dt [B*H*W, C].</summary>
    public override Tensor Backward(Tensor dy)
    {
        if (dy.Rank != 4 || dy.Dim(2) != Height || dy.Dim(3) != Width)
            throw new ArgumentException($"FromTokens.Backward expects [B,C,{Height},{Width}], got [{dy.ShapeString}]");
        var dt = Arena.Get("dt", dy.Dim(0) * Height * Width, dy.Dim(1));
        LayoutOps.NchwToTokens.Run(Backend, [dy], [dt]);
        return dt;
    }
}
