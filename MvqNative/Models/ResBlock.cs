using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Models;

/// <summary>y = x + conv2(act(conv1(act(x)))), conv1 3x3 ch->hidden, conv2 1x1 hidden->ch (VQ-VAE's block).</summary>
public sealed class ResBlock : Module
{
    private readonly Residual _body;

    public ResBlock(Backend backend, int channels, int hidden, float slope, Random rng) : base(backend)
    {
        var inner = new Sequential(backend,
            new Activation(backend, ActivationKind.LeakyRelu, slope),
            new Conv2d(backend, channels, hidden, 3, 1, 1, rng),
            new Activation(backend, ActivationKind.LeakyRelu, slope),
            new Conv2d(backend, hidden, channels, 1, 1, 0, rng));
        _body = AddChild("body", new Residual(backend, inner));
    }

    public override Tensor Forward(Tensor x) => _body.Forward(x);
    public override Tensor Backward(Tensor dy) => _body.Backward(dy);
}
