using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>A view to a new shape (-1 infers one dimension); Backward restores the input's shape.</summary>
internal sealed class Reshape : Module
{
    private readonly int[] _shape;
    private int[] _inShape = [];

    public Reshape(Backend backend, params int[] shape) : base(backend) => _shape = shape;

    public override Tensor Forward(Tensor x)
    {
        _inShape = x.Shape;
        return x.Reshape(_shape);
    }

    public override Tensor Backward(Tensor dy) => dy.Reshape(_inShape);
}
