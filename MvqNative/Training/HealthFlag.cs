// HealthFlag.cs: the device scalar that remembers a non-finite loss or gradient norm without a host sync per step.
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Training;

/// <summary>
/// 0 while every scalar poisoned into it since creation was finite, NaN from the first one that was not: updated on
/// the device (health = health + 0 * x, which is NaN for x = NaN or inf), read only when logging or saving. Shared by
/// the autoencoder's and the prior's trainers, so neither saves a checkpoint from a diverged run.
/// </summary>
internal sealed class HealthFlag : IDisposable
{
    private static readonly AxpbyAttrs Poison = new(1f, 0f);
    private readonly Backend _backend;
    private readonly Tensor _health;

    public HealthFlag(Backend backend)
    {
        _backend = backend;
        _health = backend.Zeros(1);
    }

    /// <summary>Folds the device scalar <paramref name="x"/> [1] into the flag (one launch, no sync).</summary>
    public void Add(Tensor x)
    {
        if (x.Length != 1) throw new InvalidOperationException($"health check of {x.Length} elements, expected a scalar");
        ElementwiseOps.Axpby.Run(_backend, [_health, x], [_health], Poison);
    }

    /// <summary>True once a poisoned scalar was not finite. Reads one device scalar (a host synchronisation).</summary>
    public bool Diverged => !float.IsFinite(_health.ToArray()[0]);

    public void Dispose() => _health.Dispose();
}
