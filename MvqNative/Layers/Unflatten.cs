// Layer: Unflatten ([B, prod] -> [B, ...shape]), a view; the inverse of Flatten.
using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>x [B, prod(shape)] -> [B, ...shape] as a view; Backward reshapes dy back to [B, prod].</summary>
internal sealed class Unflatten : Module
{
    private readonly int[] _shape;
    private readonly int _prod;

    /// <param name="backend">Device of the activations.</param>
    /// <param name="shape">The trailing shape each row becomes, e.g. (C, H, W).</param>
    public Unflatten(Backend backend, params int[] shape) : base(backend)
    {
        if (shape.Length == 0 || shape.Any(d => d < 1)) throw new ArgumentException($"Unflatten: bad shape [{string.Join(',', shape)}]");
        _shape = (int[])shape.Clone();
        _prod = 1; foreach (var d in shape) _prod *= d;
    }

    /// <summary>The trailing shape (a copy).</summary>
    public int[] Shape => (int[])_shape.Clone();

    /// <summary>x [B, prod] -> view [B, ...shape].</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 2 || x.Dim(1) != _prod)
            throw new ArgumentException($"Unflatten to [{string.Join(',', _shape)}] expects [B,{_prod}], got [{x.ShapeString}]");
        return x.Reshape([x.Dim(0), .. _shape]);
    }

    /// <summary>dy [B, ...shape] -> view [B, prod].</summary>
    public override Tensor Backward(Tensor dy) => dy.Reshape(dy.Dim(0), _prod);
}
