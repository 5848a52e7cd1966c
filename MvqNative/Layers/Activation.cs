// Activation layer: a pointwise nonlinearity (relu, leaky relu, silu, sigmoid) as a module.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>y = f(x) elementwise, any shape; no parameters. Backward uses the saved input.</summary>
internal sealed class Activation : Module
{
    private readonly ActivationAttrs _attrs;
    private Tensor? _x;

    /// <param name="backend">Where activations live.</param>
    /// <param name="kind">The nonlinearity.</param>
    /// <param name="slope">Negative slope of <see cref="ActivationKind.LeakyRelu"/> (ignored by the others).</param>
    public Activation(Backend backend, ActivationKind kind, float slope = 0.2f) : base(backend)
    {
        _attrs = new ActivationAttrs(kind, slope);
    }

    public ActivationKind Kind => _attrs.Kind;
    public float Slope => _attrs.Slope;

    /// <summary>x [any] -> y [same shape].</summary>
    public override Tensor Forward(Tensor x)
    {
        var y = Arena.Get("y", x.Shape);
        ActivationOps.Forward.Run(Backend, [x], [y], _attrs);
        _x = x;
        return y;
    }

    /// <summary>dy [same shape as x] -> dx = dy * f'(x).</summary>
    public override Tensor Backward(Tensor dy)
    {
        var x = _x ?? throw new InvalidOperationException("Activation.Backward called before Forward");
        if (!dy.SameShape(x)) throw new ArgumentException($"Activation: dy [{dy.ShapeString}] does not match x [{x.ShapeString}]");
        var dx = Arena.Get("dx", x.Shape);
        ActivationOps.BackwardOp.Run(Backend, [x, dy], [dx], _attrs);
        return dx;
    }
}
