// GroupNorm layer: affine group normalisation over [B, C, S...] inputs.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// Group normalisation with a per-channel affine (PyTorch's nn.GroupNorm): x [B, C, S...]
/// (rank >= 2) -> y of the same shape; statistics per sample and group of C/G channels.
/// Parameters: <c>weight</c> [C] (ones) and <c>bias</c> [C] (zeros), both without weight decay.
/// </summary>
internal sealed class GroupNorm : Module
{
    private readonly GroupNormAttrs _attrs;
    private Tensor? _x;

    /// <param name="backend">Where the parameters and activations live.</param>
    /// <param name="groups">Number of groups G; must divide <paramref name="channels"/>.</param>
    /// <param name="channels">Number of channels C (dimension 1 of the input).</param>
    /// <param name="eps">Added to the variance.</param>
    public GroupNorm(Backend backend, int groups, int channels, float eps = 1e-5f) : base(backend)
    {
        if (groups <= 0 || channels <= 0 || channels % groups != 0)
            throw new ArgumentException($"GroupNorm: {channels} channels are not divisible into {groups} groups");
        Groups = groups;
        Channels = channels;
        _attrs = new GroupNormAttrs(groups, eps);
        var w = backend.Empty(channels);
        w.Fill(1f);
        Weight = AddParameter("weight", w, decay: false);
        Bias = AddParameter("bias", backend.Zeros(channels), decay: false);
    }

    public int Groups { get; }
    public int Channels { get; }
    public float Eps => _attrs.Eps;
    /// <summary>gamma [C].</summary>
    public Parameter Weight { get; }
    /// <summary>beta [C].</summary>
    public Parameter Bias { get; }

    /// <summary>x [B, C, S...] -> y [B, C, S...].</summary>
    public override Tensor Forward(Tensor x)
    {
        if (x.Rank < 2 || x.Dim(1) != Channels)
            throw new ArgumentException($"GroupNorm({Channels}): input [{x.ShapeString}] does not have {Channels} channels in dimension 1");
        int bg = x.Dim(0) * Groups;
        var y = Arena.Get("y", x.Shape);
        var mean = Arena.Get("mean", bg);
        var rstd = Arena.Get("rstd", bg);
        GroupNormOps.Forward.Run(Backend, [x, Weight.Value, Bias.Value], [y, mean, rstd], _attrs);
        _x = x;
        return y;
    }

    /// <summary>dy [B, C, S...] -> dx (written); weight and bias gradients accumulate.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var x = _x ?? throw new InvalidOperationException("GroupNorm.Backward called before Forward");
        if (!dy.SameShape(x)) throw new ArgumentException($"GroupNorm: dy [{dy.ShapeString}] does not match x [{x.ShapeString}]");
        int bg = x.Dim(0) * Groups;
        var dx = Arena.Get("dx", x.Shape);
        GroupNormOps.RunBackward(Backend, _attrs, x: x, gamma: Weight.Value, mean: Arena.Get("mean", bg), rstd: Arena.Get("rstd", bg), dy: dy,
            dx: dx, dgamma: Weight.Grad, dbeta: Bias.Grad);
        return dx;
    }
}
