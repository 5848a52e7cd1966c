using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>y = x + inner(x); dx = dy + inner.Backward(dy). Inner must keep the shape.</summary>
internal sealed class Residual : Module
{
    private readonly Module _inner;

    public Residual(Backend backend, Module inner) : base(backend)
    {
        _inner = AddChild("inner", inner);
    }

    public override Tensor Forward(Tensor x)
    {
        var h = _inner.Forward(x);
        if (!h.SameShape(x)) throw new InvalidOperationException($"residual branch changed shape [{x.ShapeString}] -> [{h.ShapeString}]");
        var y = Arena.Get("y", x.Shape);
        ElementwiseOps.Add.Run(Backend, [x, h], [y]);
        return y;
    }

    public override Tensor Backward(Tensor dy)
    {
        var dh = _inner.Backward(dy);
        var dx = Arena.Get("dx", dy.Shape);
        ElementwiseOps.Add.Run(Backend, [dy, dh], [dx]);
        return dx;
    }
}
