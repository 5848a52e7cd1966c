using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// Modules applied in order whose parameters keep the chain's own name (children are
/// unnamed): a token head Chain(Conv2d, ToTokens) named "head" has "head.weight". At most
/// one child may hold parameters.
/// </summary>
internal sealed class Chain : Module
{
    private readonly Module[] _layers;

    public Chain(Backend backend, params Module[] layers) : base(backend)
    {
        _layers = layers;
        foreach (var l in layers) AddChild("", l);
        if (layers.Count(l => l.HasParameters) > 1) throw new ArgumentException("Chain: at most one child may hold parameters");
    }

    public override Tensor Forward(Tensor x)
    {
        foreach (var l in _layers) x = l.Forward(x);
        return x;
    }

    public override Tensor Backward(Tensor dy)
    {
        for (int i = _layers.Length - 1; i >= 0; i--) dy = _layers[i].Backward(dy);
        return dy;
    }
}
