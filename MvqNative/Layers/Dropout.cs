// Layer: inverted dropout with a counter-based mask (DropoutOps): nothing is stored between forward and backward.
using MvqNative.Backends;
using MvqNative.Mvq;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Layers;

/// <summary>
/// y = x * keep / (1 - p) in training mode, y = x in evaluation mode or when p = 0 (no kernel runs then). The mask of
/// a call is a function of (<see cref="Stream"/>, <see cref="Step"/>, element index): the owner gives each dropout
/// layer its own stream and sets the step before every forward, so a resumed run draws the same masks.
/// </summary>
internal sealed class Dropout : Module
{
    private DropoutAttrs? _attrs;

    public Dropout(Backend backend, float p, ulong stream) : base(backend)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), $"dropout p = {p} is outside [0, 1)");
        P = p;
        Stream = stream;
    }

    public float P { get; }
    public ulong Stream { get; }
    /// <summary>Training step of the next forward (chooses the mask).</summary>
    public long Step { get; set; }

    private bool Active => Training && P > 0;

    public override Tensor Forward(Tensor x)
    {
        if (!Active) { _attrs = null; return x; }
        _attrs = new DropoutAttrs(P, Seed(Stream, Step));
        var y = Arena.Get("y", x.Shape);
        DropoutOps.Apply.Run(Backend, [x], [y], _attrs);
        return y;
    }

    public override Tensor Backward(Tensor dy)
    {
        if (_attrs is null) return dy;
        var dx = Arena.Get("dx", dy.Shape);
        DropoutOps.Apply.Run(Backend, [dy], [dx], _attrs);
        return dx;
    }

    /// <summary>A 32-bit seed from (stream, step): two rounds of a 64-bit finaliser (splitmix64's).</summary>
    internal static uint Seed(ulong stream, long step)
    {
        ulong h = MaskHash.Mix(MaskHash.Mix(stream + 0x9E3779B97F4A7C15UL) ^ (ulong)step);
        return (uint)(h ^ (h >> 32));
    }
}
