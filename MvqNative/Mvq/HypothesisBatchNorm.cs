// BatchNorm of the MVQ transformation network f (f.1): statistics come from the caller (taken over
// every hypothesis of the batch, or the running buffers) and are constants in the backward pass.
using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Mvq;

/// <summary>
/// y = (a - mean) rstd gamma + beta over rows a [N, F], with mean and rstd set by
/// <see cref="SetStatistics"/> (stop-gradient: Backward gives da = dy rstd gamma and accumulates
/// into gamma and beta only). Parameters <c>weight</c> [F] (ones), <c>bias</c> [F] (zeros), and the
/// non-trainable buffers <c>running_mean</c> [F] (zeros) and <c>running_var</c> [F] (ones).
/// </summary>
internal sealed class HypothesisBatchNorm : Module
{
    private Tensor? _a, _mean, _rstd;

    /// <param name="backend">Where parameters and activations live.</param>
    /// <param name="features">F, the number of features.</param>
    public HypothesisBatchNorm(Backend backend, int features) : base(backend)
    {
        if (features < 1) throw new ArgumentOutOfRangeException(nameof(features), $"BatchNorm needs at least one feature, got {features}");
        Features = features;
        var ones = backend.Empty(features); ones.Fill(1f);
        Weight = AddParameter("weight", ones, decay: false);
        Bias = AddParameter("bias", backend.Zeros(features), decay: false);
        RunningMean = AddParameter("running_mean", backend.Zeros(features), decay: false, trainable: false);
        var rv = backend.Empty(features); rv.Fill(1f);
        RunningVar = AddParameter("running_var", rv, decay: false, trainable: false);
    }

    public int Features { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }
    public Parameter RunningMean { get; }
    public Parameter RunningVar { get; }

    /// <summary>Sets the statistics the next Forward/Backward use: mean [F] and rstd [F] (tensors kept by reference).</summary>
    public void SetStatistics(Tensor mean, Tensor rstd)
    {
        if (mean.Length != Features || rstd.Length != Features) throw new ArgumentException($"HypothesisBatchNorm({Features}): statistics of {mean.Length} and {rstd.Length} features");
        _mean = mean; _rstd = rstd;
    }

    /// <summary>a [..., F] -> y [..., F].</summary>
    public override Tensor Forward(Tensor a)
    {
        if (_mean is null || _rstd is null) throw new InvalidOperationException("HypothesisBatchNorm: SetStatistics before Forward");
        var y = Arena.Get("y", a.Shape);
        MvqOps.RunBnFrozenForward(Backend, a: a, mean: _mean, rstd: _rstd, gamma: Weight.Value, beta: Bias.Value, y: y);
        _a = a;
        return y;
    }

    /// <summary>dy [..., F] -> da (written); weight and bias gradients accumulate; no gradient reaches the statistics.</summary>
    public override Tensor Backward(Tensor dy)
    {
        var a = _a ?? throw new InvalidOperationException("HypothesisBatchNorm.Backward before Forward");
        if (!dy.SameShape(a)) throw new ArgumentException($"HypothesisBatchNorm: dy [{dy.ShapeString}] does not match a [{a.ShapeString}]");
        var da = Arena.Get("da", a.Shape);
        MvqOps.RunBnFrozenBackward(Backend, a: a, mean: _mean!, rstd: _rstd!, gamma: Weight.Value, dy: dy, da: da, dgamma: Weight.Grad, dbeta: Bias.Grad);
        return da;
    }
}
