// U of MVQ: a learned mixing of L2 secondary tokens onto L1 primary tokens (bottleneck.mix).
using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Mvq;

/// <summary>
/// y[b, l1, :] = sum_l2 weight[l1, l2] f[b, l2, :] + bias[l1, :]: f [B*L2, D] tokens -> y [B*L1, D].
/// Parameters <c>weight</c> [L1, L2] (weight decay) and <c>bias</c> [L1, D] (none), both
/// U(-1/sqrt(L2), 1/sqrt(L2)) as in the PyTorch reference.
/// </summary>
internal sealed class TokenMix : Module
{
    private Tensor? _f;

    /// <param name="backend">Where parameters and activations live.</param>
    /// <param name="l1">Output tokens per instance.</param>
    /// <param name="l2">Input tokens per instance.</param>
    /// <param name="dim">Token size D.</param>
    /// <param name="rng">Initialisation source.</param>
    public TokenMix(Backend backend, int l1, int l2, int dim, Random rng) : base(backend)
    {
        if (l1 < 1 || l2 < 1 || dim < 1) throw new ArgumentOutOfRangeException(nameof(l1), $"TokenMix {l2}->{l1} tokens of {dim}: sizes must be positive");
        L1 = l1; L2 = l2; Dim = dim;
        float bound = 1f / MathF.Sqrt(l2);
        Weight = AddParameter("weight", Uniform(backend, rng, bound, l1, l2));
        Bias = AddParameter("bias", Uniform(backend, rng, bound, l1, dim), decay: false);
    }

    public int L1 { get; }
    public int L2 { get; }
    public int Dim { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    /// <summary>f [B*L2, D] -> y [B*L1, D].</summary>
    public override Tensor Forward(Tensor f)
    {
        if (f.Rank != 2 || f.Dim(1) != Dim || f.Dim(0) % L2 != 0) throw new ArgumentException($"TokenMix: f must be [B*{L2}, {Dim}], got [{f.ShapeString}]");
        int b = f.Dim(0) / L2;
        var y = Arena.Get("y", b * L1, Dim);
        MvqOps.TokenMixForward.Run(Backend, [f.Reshape(b, L2, Dim), Weight.Value, Bias.Value], [y.Reshape(b, L1, Dim)]);
        _f = f;
        return y;
    }

    /// <summary>dy [B*L1, D] -> df [B*L2, D] (written); weight and bias gradients accumulate.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var f = _f ?? throw new InvalidOperationException("TokenMix.Backward before Forward");
        int b = f.Dim(0) / L2;
        if (dy.Length != b * L1 * Dim) throw new ArgumentException($"TokenMix: dy [{dy.ShapeString}] does not match [{b * L1}, {Dim}]");
        var df = Arena.Get("df", f.Shape);
        MvqOps.TokenMixBackward.Run(Backend, [f.Reshape(b, L2, Dim), Weight.Value, dy.Reshape(b, L1, Dim)], [df.Reshape(b, L2, Dim), Weight.Grad, Bias.Grad]);
        return df;
    }

    private static Tensor Uniform(Backend backend, Random rng, float bound, params int[] shape)
    {
        var a = new float[shape[0] * shape[1]];
        for (int i = 0; i < a.Length; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
        return backend.FromArray(a, shape);
    }
}
