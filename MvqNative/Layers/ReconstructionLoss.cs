// ReconstructionLoss: mean squared or mean absolute error between a prediction and its target, kept on the device.
using System.Text.Json.Serialization;
using MvqNative.Backends;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>Which reconstruction loss <see cref="ReconstructionLoss"/> computes (config JSON: "mse" | "l1").</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LossKind>))]
internal enum LossKind { [JsonStringEnumMemberName("mse")] Mse, [JsonStringEnumMemberName("l1")] L1 }

/// <summary>
/// loss = Scale * mean((pred - target)^2) (<see cref="LossKind.Mse"/>) or Scale * mean|pred - target|
/// (<see cref="LossKind.L1"/>), with the gradient with respect to pred computed in the same op.
/// The loss stays on the device (no host synchronisation) until <see cref="Read"/>.
/// </summary>
internal sealed class ReconstructionLoss : IDisposable
{
    private readonly Arena _arena;
    private readonly OpDef _op;
    private readonly LossAttrs _attrs;
    private Tensor? _loss, _grad;

    /// <param name="backend">Where pred and target live.</param>
    /// <param name="kind">Mean squared or mean absolute error.</param>
    /// <param name="scale">Factor applied to the loss and its gradient.</param>
    public ReconstructionLoss(Backend backend, LossKind kind, float scale = 1f)
    {
        Backend = backend;
        Kind = kind;
        _arena = new Arena(backend);
        _op = kind switch
        {
            LossKind.Mse => LossOps.Mse,
            LossKind.L1 => LossOps.L1,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        _attrs = new LossAttrs(scale);
    }

    public Backend Backend { get; }
    public LossKind Kind { get; }
    public float Scale => _attrs.Scale;

    /// <summary>
    /// pred, target [same shape] -> the loss [1] on the device; also fills <see cref="Grad"/>.
    /// The returned tensor is reused by the next call.
    /// </summary>
    public Tensor Compute(Tensor pred, Tensor target)
    {
        if (pred.Length != target.Length)
            throw new ArgumentException($"{Kind} loss: pred [{pred.ShapeString}] and target [{target.ShapeString}] differ in size");
        _loss = _arena.Get("loss", 1);
        _grad = _arena.Get("dpred", pred.Shape);
        _op.Run(Backend, [pred, target], [_loss, _grad], _attrs);
        return _loss;
    }

    /// <summary>d loss / d pred [shape of pred] from the last <see cref="Compute"/> (written, not accumulated).</summary>
    public Tensor Grad => _grad ?? throw new InvalidOperationException("ReconstructionLoss.Grad read before Compute");

    /// <summary>Downloads the last loss (synchronises with the device).</summary>
    public float Read() => (_loss ?? throw new InvalidOperationException("ReconstructionLoss.Read called before Compute")).ToArray()[0];

    public void Dispose() => _arena.Dispose();
}
