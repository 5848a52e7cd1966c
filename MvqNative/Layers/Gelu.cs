// Layer: GELU, tanh approximation (GPT-2's; PyTorch nn.GELU(approximate='tanh')).
using MvqNative.Backends;
using MvqNative.Prior;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) elementwise; no parameters.</summary>
internal sealed class Gelu : Module
{
    private Tensor? _x;

    public Gelu(Backend backend) : base(backend) { }

    public override Tensor Forward(Tensor x)
    {
        _x = x;
        var y = Arena.Get("y", x.Shape);
        PriorKernels.Gelu(Backend, x, y);
        return y;
    }

    public override Tensor Backward(Tensor dy)
    {
        var x = _x ?? throw new InvalidOperationException("Gelu.Backward before Forward");
        var dx = Arena.Get("dx", x.Shape);
        PriorKernels.GeluBackward(Backend, x, dy, dx);
        return dx;
    }
}
