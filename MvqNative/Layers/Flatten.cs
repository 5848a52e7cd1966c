// Layer: Flatten ([B, ...] -> [B, rest]), a view of its input.
using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// x [B, d1, ..., dk] -> [B, d1*...*dk] as a view of x (no copy, no buffer); Backward
/// returns dy reshaped to x's shape, also a view.
/// </summary>
internal sealed class Flatten : Module
{
    private int[] _shape = [];

    public Flatten(Backend backend) : base(backend) { }

    /// <summary>x [B, ...] -> view [B, rest].</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank < 1) throw new ArgumentException("Flatten expects at least [B]");
        _shape = x.Shape;
        return x.Reshape(x.Dim(0), x.Dim(0) == 0 ? 0 : x.Length / x.Dim(0));
    }

    /// <summary>dy [B, rest] -> view with the forward input's shape.</summary>
    public override Tensor Backward(Tensor dy)
    {
        if (_shape.Length == 0) throw new InvalidOperationException("Flatten.Backward before Forward");
        return dy.Reshape(_shape);
    }
}
