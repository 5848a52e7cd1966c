using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>A trainable tensor with its gradient (accumulated with +=, zeroed by the optimiser).</summary>
internal sealed class Parameter : IDisposable
{
    public Parameter(string name, Tensor value, bool decay = true, bool trainable = true)
    {
        Name = name;
        Value = value;
        Grad = value.Backend.Zeros(value.Shape);
        Decay = decay;
        Trainable = trainable;
    }

    /// <summary>Dotted path, e.g. encoder.conv1.weight: the checkpoint key. Set once as the model is assembled (Module.AddChild).</summary>
    public string Name { get; internal set; }
    public Tensor Value { get; }
    public Tensor Grad { get; private set; }

    private Optim.GradientArena? _arena;

    /// <summary>Makes <paramref name="view"/> (a view into <paramref name="arena"/>, already holding this gradient's values) the gradient; frees the old one.</summary>
    internal void UseArenaGradient(Tensor view, Optim.GradientArena arena)
    {
        Grad.Dispose();
        _arena?.Release();
        Grad = view;
        _arena = arena;
    }
    /// <summary>Whether AdamW applies weight decay (false for biases, norms, codebooks).</summary>
    public bool Decay { get; }
    /// <summary>False for state updated outside the optimiser (EMA codebooks and their statistics).</summary>
    public bool Trainable { get; }

    public void Dispose()
    {
        Value.Dispose();
        Grad.Dispose();
        _arena?.Release();
        _arena = null;
    }

    public override string ToString() => $"{Name} [{Value.ShapeString}]";
}
