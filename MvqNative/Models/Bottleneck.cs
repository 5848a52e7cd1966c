using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Quantizers;
using MvqNative.Tensors;

namespace MvqNative.Models;

/// <summary>
/// The part between the encoder trunk and the decoder: token heads, quantizers and (for MVQ)
/// the hypotheses. Forward(h [B, c1, H', W']) returns the decoder's input map of the same
/// shape; Backward adds the gradients of its own loss terms (VQ, WTA) itself.
/// </summary>
internal abstract class Bottleneck : Module
{
    protected Bottleneck(Backend backend) : base(backend) { }

    /// <summary>Section timer of the owning model (set with <see cref="Autoencoder.Timer"/>): bottlenecks may time their parts.</summary>
    public Training.SectionTimer? Timer { get; internal set; }

    /// <summary>Named auxiliary loss terms of the last Forward, as device scalars [1].</summary>
    public abstract IReadOnlyList<(string Name, Tensor Value)> LossTerms { get; }

    /// <summary>The primary quantizer (usage statistics, restarts).</summary>
    public abstract VectorQuantizer Primary { get; }

    /// <summary>All quantizers, for usage reports: ("k1", q1), ("k2", q2).</summary>
    public abstract IReadOnlyList<(string Name, VectorQuantizer Quantizer)> Quantizers { get; }

    /// <summary>The parts of an instance's code: k1 [L1] for VQ; k1 [L1], k2 [L2], w [1] for MVQ.</summary>
    public abstract IReadOnlyList<CodeSegment> Segments { get; }

    /// <summary>Integers per instance in a code: L1 for VQ; L1 + L2 + 1 for MVQ.</summary>
    public int CodeLength => Segments.Sum(s => s.Length);

    /// <summary>Copies the codes of the last Forward into dst [B, CodeLength].</summary>
    public abstract void ReadCodes(Span<int> dst);

    /// <summary>The decoder input for given codes [B, CodeLength] (no encoder).</summary>
    public abstract Tensor ForwardFromCodes(Tensor codes);

    /// <summary>Extra metadata the checkpoint must keep (e.g. the evaluation bank seed).</summary>
    public virtual IReadOnlyDictionary<string, string> Metadata => new Dictionary<string, string>();

    /// <summary>Restores what <see cref="Metadata"/> saved, before the weights are loaded.</summary>
    public virtual void LoadMetadata(IReadOnlyDictionary<string, string> metadata) { }
}

/// <summary>A named run of integers inside an instance's code, each in [0, Vocabulary).</summary>
internal sealed record CodeSegment(string Name, int Start, int Length, int Vocabulary);
