// Layer: layer normalisation over the last dimension, on layer_norm_forward / layer_norm_backward.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Prior;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// y = (x - mean) / sqrt(var + eps) * weight + bias over the last dimension C (biased variance), as
/// PyTorch's nn.LayerNorm. Parameters <c>weight</c> [C] (ones) and <c>bias</c> [C] (zeros), no weight decay.
/// </summary>
internal sealed class LayerNorm : Module
{
    private Tensor? _x2;
    private int[] _shape = [];

    public LayerNorm(Backend backend, int dim, float eps = 1e-5f) : base(backend)
    {
        Dim = dim; Eps = eps;
        Attrs = new LayerNormAttrs(eps);
        Weight = AddParameter("weight", backend.FromArray(Init.Const(dim, 1f), dim), decay: false);
        Bias = AddParameter("bias", backend.Zeros(dim), decay: false);
    }

    public int Dim { get; }
    public float Eps { get; }
    internal LayerNormAttrs Attrs { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    /// <summary>x [..., C] -> y [..., C].</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Dim(-1) != Dim) throw new ArgumentException($"LayerNorm({Dim}) expects [..., {Dim}], got [{x.ShapeString}]");
        int rows = x.Length / Dim;
        _shape = x.Shape;
        _x2 = x.Reshape(rows, Dim);
        var y = Arena.Get("y", x.Shape);
        PriorKernels.LayerNorm(Backend, _x2, Weight.Value, Bias.Value, y.Reshape(rows, Dim), Arena.Get("mean", rows), Arena.Get("rstd", rows), Attrs);
        return y;
    }

    /// <summary>dy [..., C] -> dx (written); weight and bias gradients accumulate.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var x2 = _x2 ?? throw new InvalidOperationException("LayerNorm.Backward before Forward");
        int rows = x2.Dim(0);
        var dx = Arena.Get("dx", _shape);
        PriorKernels.LayerNormBackward(Backend, x2, Weight.Value, Arena.Get("mean", rows), Arena.Get("rstd", rows), dy.Reshape(rows, Dim), dx.Reshape(rows, Dim), Weight.Grad, Bias.Grad, Attrs);
        return dx;
    }
}
