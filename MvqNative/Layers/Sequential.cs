using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>Modules applied in order; Backward runs them in reverse.</summary>
internal sealed class Sequential : Module
{
    private readonly List<Module> _layers = new();

    public Sequential(Backend backend, params Module[] layers) : base(backend)
    {
        foreach (var l in layers) Add(l);
    }

    public Sequential Add(Module m)
    {
        AddChild(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), m);
        _layers.Add(m);
        return this;
    }

    public IReadOnlyList<Module> Layers => _layers;

    public override Tensor Forward(Tensor x)
    {
        foreach (var l in _layers) x = l.Forward(x);
        return x;
    }

    public override Tensor Backward(Tensor dy)
    {
        for (int i = _layers.Count - 1; i >= 0; i--) dy = _layers[i].Backward(dy);
        return dy;
    }
}
