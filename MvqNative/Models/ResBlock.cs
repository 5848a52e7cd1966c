using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;

namespace MvqNative.Models;

/// <summary>
/// VQ-VAE's residual block: y = x + conv1x1(act(conv3x3(act(x)))). Built as
/// Residual(Sequential(act, conv, act, conv)) so its parameters are named
/// inner.1.* and inner.3.*, as in the PyTorch reference.
/// </summary>
internal static class ResBlock
{
    public static Residual Create(Backend backend, int channels, int hidden, float slope, Random rng) =>
        new(backend, new Sequential(backend,
            new Activation(backend, ActivationKind.LeakyRelu, slope),
            new Conv2d(backend, channels, hidden, 3, 1, 1, rng),
            new Activation(backend, ActivationKind.LeakyRelu, slope),
            new Conv2d(backend, hidden, channels, 1, 1, 0, rng)));
}
