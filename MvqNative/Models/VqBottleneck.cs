using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Quantizers;
using MvqNative.Tensors;

namespace MvqNative.Models;

/// <summary>The VQ-VAE bottleneck: head -> vector quantizer (straight-through) -> decoder head.</summary>
internal sealed class VqBottleneck : Bottleneck
{
    private readonly Chain _head, _out;
    private readonly VectorQuantizer _vq;
    private readonly int _tokens;

    public VqBottleneck(Backend backend, ModelConfig c, Random rng) : base(backend)
    {
        _tokens = c.PrimaryTokens;
        _head = AddChild("head", TokenHeads.Encode(backend, c, _tokens, c.CodeDim, rng));
        _vq = AddChild("vq", new VectorQuantizer(backend, QuantizerFactory.Options(c.Quantizer, c.Codes, c.CodeDim, rng.Next()), rng));
        _out = AddChild("out", TokenHeads.Decode(backend, c, _tokens, c.CodeDim, rng));
    }

    public override VectorQuantizer Primary => _vq;
    public override IReadOnlyList<(string Name, VectorQuantizer Quantizer)> Quantizers => [("k1", _vq)];
    public override IReadOnlyList<(string Name, Tensor Value)> LossTerms => [("vq", _vq.Loss)];
    public override IReadOnlyList<CodeSegment> Segments => [new("k1", 0, _tokens, _vq.Options.Codes)];

    public override Tensor Forward(Tensor h) => _out.Forward(_vq.Forward(_head.Forward(h)));

    public override Tensor Backward(Tensor dy) => _head.Backward(_vq.Backward(_out.Backward(dy)));

    public override void ReadCodes(Span<int> dst) => _vq.Indices.ToIntArray().CopyTo(dst);

    public override Tensor ForwardFromCodes(Tensor codes)
    {
        var idx = codes.Reshape(-1);
        var q = Arena.Get("q_codes", idx.Length, _vq.Options.Dim);
        GatherOps.GatherRows.Run(Backend, [_vq.Codebook.Value, idx], [q]);
        return _out.Forward(q);
    }
}
