// Transformer.cs: the prior's network, GPT style with pre-LayerNorm blocks (docs/prior.md):
// token + learned position embeddings, blocks of causal self-attention and a GELU MLP, final LayerNorm, logits.
using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Prior;

/// <summary>Causal multi-head self-attention: qkv = Linear(C -> 3C), fused attention, proj = Linear(C -> C). x [B, T, C].</summary>
internal sealed class CausalSelfAttention : Module
{
    private Tensor? _qkv;
    private int _b, _t;
    private AttentionAttrs? _attrs;

    public CausalSelfAttention(Backend backend, int width, int heads, Random rng, Dropout? dropout = null) : base(backend)
    {
        Heads = heads;
        Qkv = AddChild("qkv", new Linear(backend, width, 3 * width, rng));
        Proj = AddChild("proj", new Linear(backend, width, width, rng));
        Drop = AddChild("drop", dropout ?? new Dropout(backend, 0, 0));
    }

    /// <summary>Dropout on the attention output (after the projection).</summary>
    public Dropout Drop { get; }

    public int Heads { get; }
    public Linear Qkv { get; }
    public Linear Proj { get; }

    public override Tensor Forward(Tensor x)
    {
        if (x.Rank != 3) throw new ArgumentException($"attention expects [B, T, C], got [{x.ShapeString}]");
        _b = x.Dim(0); _t = x.Dim(1);
        int c = x.Dim(2);
        var qkv = Qkv.Forward(x.Reshape(_b * _t, c));
        _qkv = qkv;
        var y = Arena.Get("y", _b * _t, c);
        if (_attrs is null || _attrs.B != _b || _attrs.T != _t) _attrs = new AttentionAttrs(_b, _t, Heads);
        PriorKernels.Attention(Backend, qkv, y, Arena.Get("lse", _b, Heads, _t), _attrs);
        return Drop.Forward(Proj.Forward(y)).Reshape(_b, _t, c);
    }

    public override Tensor Backward(Tensor dy)
    {
        var qkv = _qkv ?? throw new InvalidOperationException("attention Backward before Forward");
        int c = qkv.Dim(1) / 3;
        var da = Proj.Backward(Drop.Backward(dy.Reshape(_b * _t, c)));
        var dqkv = Arena.Get("dqkv", _b * _t, 3 * c);
        PriorKernels.AttentionBackward(Backend, qkv, Arena.Get("y", _b * _t, c), Arena.Get("lse", _b, Heads, _t), da, dqkv, _attrs!);
        return Qkv.Backward(dqkv).Reshape(_b, _t, c);
    }
}

/// <summary>fc = Linear(C -> rC), GELU (tanh), proj = Linear(rC -> C).</summary>
internal sealed class Mlp : Module
{
    private readonly Gelu _act;

    public Mlp(Backend backend, int width, int hidden, Random rng, Dropout? dropout = null) : base(backend)
    {
        Fc = AddChild("fc", new Linear(backend, width, hidden, rng));
        _act = AddChild("act", new Gelu(backend));
        Proj = AddChild("proj", new Linear(backend, hidden, width, rng));
        Drop = AddChild("drop", dropout ?? new Dropout(backend, 0, 0));
    }

    /// <summary>Dropout on the MLP output (after the projection).</summary>
    public Dropout Drop { get; }

    public Linear Fc { get; }
    public Linear Proj { get; }
    internal Gelu Act => _act;

    public override Tensor Forward(Tensor x) => Drop.Forward(Proj.Forward(_act.Forward(Fc.Forward(x))));

    public override Tensor Backward(Tensor dy) => Fc.Backward(_act.Backward(Proj.Backward(Drop.Backward(dy))));
}

/// <summary>x = x + attn(ln1(x)); x = x + mlp(ln2(x)). x [B, T, C].</summary>
internal sealed class TransformerBlock : Module
{
    // dropoutStream: the first of this block's two dropout streams (attention output, then MLP output).
    public TransformerBlock(Backend backend, PriorConfig c, Random rng, ulong dropoutStream = 0) : base(backend)
    {
        Ln1 = AddChild("ln1", new LayerNorm(backend, c.Width));
        Attn = AddChild("attn", new CausalSelfAttention(backend, c.Width, c.Heads, rng, new Dropout(backend, c.Dropout, dropoutStream)));
        Ln2 = AddChild("ln2", new LayerNorm(backend, c.Width));
        Mlp = AddChild("mlp", new Mlp(backend, c.Width, c.MlpRatio * c.Width, rng, new Dropout(backend, c.Dropout, dropoutStream + 1)));
    }

    public LayerNorm Ln1 { get; }
    public CausalSelfAttention Attn { get; }
    public LayerNorm Ln2 { get; }
    public Mlp Mlp { get; }

    public override Tensor Forward(Tensor x)
    {
        var a = Attn.Forward(Ln1.Forward(x));
        var x1 = Arena.Get("x1", x.Shape);
        ElementwiseOps.Add.Run(Backend, [x, a], [x1]);
        var m = Mlp.Forward(Ln2.Forward(x1));
        var x2 = Arena.Get("x2", x.Shape);
        ElementwiseOps.Add.Run(Backend, [x1, m], [x2]);
        return x2;
    }

    public override Tensor Backward(Tensor dy)
    {
        var dm = Ln2.Backward(Mlp.Backward(dy));
        var dx1 = Arena.Get("dx1", dy.Shape);
        ElementwiseOps.Add.Run(Backend, [dy, dm], [dx1]);
        var da = Ln1.Backward(Attn.Backward(dx1));
        var dx = Arena.Get("dx", dy.Shape);
        ElementwiseOps.Add.Run(Backend, [dx1, da], [dx]);
        return dx;
    }
}

/// <summary>
/// The autoregressive prior over an autoencoder's codes. Forward(inputs I32 [B, T]) returns logits
/// [B*T, V] (all V columns; the caller masks by segment); Backward(dlogits) accumulates every parameter's
/// gradient. Parameter names (checkpoint keys, the same as tools/reference/prior_reference.py): tok_emb.weight [V+1, C],
/// pos_emb.weight [T, C], blocks.i.{ln1,attn.qkv,attn.proj,ln2,mlp.fc,mlp.proj}.{weight,bias}, ln_f.*, head.*.
/// </summary>
internal sealed class TransformerPrior : Module
{
    private readonly Sequential _blocks;
    private int[] _posShape = [];

    public TransformerPrior(Backend backend, PriorConfig config, CodeLayout layout, int seed) : base(backend)
    {
        config.Validate();
        Config = config;
        Layout = layout;
        var rng = new Random(seed);
        int c = config.Width;
        TokEmb = AddChild("tok_emb", new Embedding(backend, layout.InputVocabulary, c, rng, config.InitStd));
        PosEmb = AddChild("pos_emb", new Embedding(backend, layout.Length, c, rng, config.InitStd));
        _blocks = AddChild("blocks", new Sequential(backend));
        // Dropout streams: one per dropout layer, derived from the seed, so masks differ across layers and seeds.
        ulong streams = (ulong)(uint)seed << 32;
        for (int i = 0; i < config.Layers; i++) _blocks.Add(new TransformerBlock(backend, config, rng, streams + 2 * (ulong)i));
        LnF = AddChild("ln_f", new LayerNorm(backend, c));
        Head = AddChild("head", new Linear(backend, c, layout.Vocabulary, rng));
        // GPT-2 initialisation: N(0, std) weights, zero biases, residual projections scaled by 1/sqrt(2 layers).
        float resid = config.InitStd / MathF.Sqrt(2 * config.Layers);
        foreach (var b in Blocks)
        {
            foreach (var (lin, std) in new[] { (b.Attn.Qkv, config.InitStd), (b.Attn.Proj, resid), (b.Mlp.Fc, config.InitStd), (b.Mlp.Proj, resid) })
                InitLinear(lin, rng, std);
        }
        InitLinear(Head, rng, config.InitStd);
    }

    private static void InitLinear(Linear l, Random rng, float std)
    {
        l.Weight.Value.CopyFrom(Init.Normal(rng, l.Weight.Value.Length, std));
        l.Bias.Value.Zero();
    }

    public PriorConfig Config { get; }
    public CodeLayout Layout { get; }
    public Embedding TokEmb { get; }
    public Embedding PosEmb { get; }
    public IEnumerable<TransformerBlock> Blocks => _blocks.Layers.Cast<TransformerBlock>();
    public LayerNorm LnF { get; }
    public Linear Head { get; }

    /// <summary>Training step whose dropout masks the next forward draws (the trainer sets it; no effect when dropout is 0).</summary>
    public long DropoutStep
    {
        set
        {
            foreach (var b in Blocks) { b.Attn.Drop.Step = value; b.Mlp.Drop.Step = value; }
        }
    }

    /// <summary>inputs I32 [B, T'] (T' &lt;= T) -> logits [B*T', V].</summary>
    public override Tensor Forward(Tensor inputs)
    {
        if (inputs.Rank != 2 || inputs.Dim(1) > Layout.Length) throw new ArgumentException($"prior expects inputs [B, T <= {Layout.Length}], got [{inputs.ShapeString}]");
        int b = inputs.Dim(0), t = inputs.Dim(1), c = Config.Width;
        var pos = Arena.GetInt("pos", b, t);
        if (!_posShape.AsSpan().SequenceEqual(pos.Shape))
        {
            var host = new int[b * t];
            for (int i = 0; i < host.Length; i++) host[i] = i % t;
            pos.CopyFrom(host);
            _posShape = pos.Shape;
        }
        var te = TokEmb.Forward(inputs);
        var pe = PosEmb.Forward(pos);
        var x = Arena.Get("x0", b, t, c);
        ElementwiseOps.Add.Run(Backend, [te, pe], [x]);
        var h = _blocks.Forward(x);
        var f = LnF.Forward(h);
        return Head.Forward(f.Reshape(b * t, c));
    }

    public override Tensor Backward(Tensor dlogits)
    {
        var df = Head.Backward(dlogits);
        var dh = LnF.Backward(df);
        var dx = _blocks.Backward(dh);
        PosEmb.Backward(dx);
        TokEmb.Backward(dx);
        return dx;
    }
}
