// PriorLoss.cs: segment-masked softmax cross-entropy of the prior's logits, mean over tokens, and its gradient.
using MvqNative.Backends;
using MvqNative.Tensors;

namespace MvqNative.Prior;

/// <summary>
/// loss = mean over the N = B*T tokens of -log softmax(logits[n, lo_n..hi_n))[target_n] in nats, the softmax taken
/// over the token's segment only (cross_entropy_forward); <see cref="Grad"/> = dloss/dlogits (1/N per row).
/// </summary>
internal sealed class PriorLoss : IDisposable
{
    private readonly Backend _backend;
    private Tensor? _loss, _lse, _grad, _dloss;

    public PriorLoss(Backend backend) => _backend = backend;

    /// <summary>dloss/dlogits [N, V] of the last <see cref="Compute"/> with gradient.</summary>
    public Tensor Grad => _grad ?? throw new InvalidOperationException("PriorLoss: Compute(grad: true) has not run");

    /// <summary>Per-token losses [N] (nats) of the last Compute.</summary>
    public Tensor Losses => _loss ?? throw new InvalidOperationException("PriorLoss: Compute has not run");

    public void Compute(Tensor logits, Tensor targets, Tensor bounds, bool grad = true)
    {
        int n = logits.Dim(0), v = logits.Dim(1);
        Ensure(ref _loss, n); Ensure(ref _lse, n);
        PriorKernels.CrossEntropy(_backend, logits, targets, bounds, _loss!, _lse!);
        if (!grad) return;
        if (_dloss is null || _dloss.Length != n) { _dloss?.Dispose(); _dloss = _backend.Empty(n); _dloss.Fill(1f / n); }
        if (_grad is null || !_grad.SameShape(logits)) { _grad?.Dispose(); _grad = _backend.Empty(n, v); }
        PriorKernels.CrossEntropyBackward(_backend, logits, targets, bounds, _lse!, _dloss, _grad);
    }

    private void Ensure(ref Tensor? t, int n)
    {
        if (t is not null && t.Length == n) return;
        t?.Dispose();
        t = _backend.Empty(n);
    }

    /// <summary>Sum of the per-token losses of the last Compute, in float64 (downloads).</summary>
    public double ReadSum()
    {
        double s = 0;
        foreach (var x in Losses.ToArray()) s += x;
        return s;
    }

    public void Dispose()
    {
        _loss?.Dispose(); _lse?.Dispose(); _grad?.Dispose(); _dloss?.Dispose();
    }
}
