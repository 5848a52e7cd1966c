// Layer: fully connected map over the last dimension, on linear_forward / linear_backward.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// y = x W^T + b over the last dimension: x [..., in] -> y [..., out] (leading dimensions
/// are flattened into rows and kept in the output shape). Parameters <c>weight</c> [out, in]
/// and <c>bias</c> [out] (no weight decay), initialised U(-1/sqrt(in), 1/sqrt(in)) as PyTorch does.
/// </summary>
internal sealed class Linear : Module
{
    private Tensor? _x2;
    private int[] _xShape = [];

    /// <param name="backend">Device of the parameters and activations.</param>
    /// <param name="inFeatures">Size of the input's last dimension.</param>
    /// <param name="outFeatures">Size of the output's last dimension.</param>
    /// <param name="rng">Initialisation source; null uses a fixed seed (0).</param>
    public Linear(Backend backend, int inFeatures, int outFeatures, Random? rng = null) : base(backend)
    {
        if (inFeatures < 1 || outFeatures < 1) throw new ArgumentOutOfRangeException(nameof(inFeatures), $"linear {inFeatures}->{outFeatures}: sizes must be positive");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        rng ??= new Random(0);
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = AddParameter("weight", Uniform(backend, rng, bound, outFeatures, inFeatures));
        Bias = AddParameter("bias", Uniform(backend, rng, bound, outFeatures), decay: false);
    }

    public int InFeatures { get; }
    public int OutFeatures { get; }
    /// <summary>[out, in].</summary>
    public Parameter Weight { get; }
    /// <summary>[out].</summary>
    public Parameter Bias { get; }

    /// <summary>x [..., in] -> y [..., out] (arena buffer).</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank < 1 || x.Dim(-1) != InFeatures)
            throw new ArgumentException($"Linear({InFeatures}->{OutFeatures}) expects [..., {InFeatures}], got [{x.ShapeString}]");
        int rows = x.Length / InFeatures;
        _xShape = x.Shape;
        _x2 = x.Reshape(rows, InFeatures);
        var yShape = (int[])x.Shape.Clone();
        yShape[^1] = OutFeatures;
        var y = Arena.Get("y", yShape);
        LinearOps.Forward.Run(Backend, [_x2, Weight.Value, Bias.Value], [y.Reshape(rows, OutFeatures)]);
        return y;
    }

    /// <summary>dy [..., out] -> dx [..., in] (written); weight and bias gradients accumulate.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var x2 = _x2 ?? throw new InvalidOperationException("Linear.Backward before Forward");
        int rows = x2.Dim(0);
        if (dy.Length != rows * OutFeatures || dy.Dim(-1) != OutFeatures)
            throw new ArgumentException($"Linear.Backward: dy [{dy.ShapeString}] does not match the forward output [..., {OutFeatures}] of {rows} rows");
        var dx = Arena.Get("dx", _xShape);
        LinearOps.BackwardOp.Run(Backend, [x2, Weight.Value, dy.Reshape(rows, OutFeatures)], [dx.Reshape(rows, InFeatures), Weight.Grad, Bias.Grad]);
        return dx;
    }

    private static Tensor Uniform(Backend backend, Random rng, float bound, params int[] shape)
    {
        int n = 1; foreach (var d in shape) n *= d;
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        return backend.FromArray(a, shape);
    }
}
