// The MVQ bottleneck of docs/model.md: primary VQ, secondary VQ, GroupNorm, masked hypotheses
// scored by the fused mvq_score op (running argmin over chunks), the winner path with ordinary
// differentiable ops, the WTA loss, and decoding from codes (k1, k2, w).
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Mvq;
using MvqNative.Ops;
using MvqNative.Quantizers;
using MvqNative.Tensors;
using MvqNative.Training;

namespace MvqNative.Models;

/// <summary>
/// Masked Vector Quantization bottleneck. Forward(h [B, c1, H', W']) returns the decoder input for
/// the winning hypothesis Y_w; Backward routes the decoder gradient into c_base (straight through
/// to z1) and, with the WTA gradient 2(Y_w - z1)/(B L1 D1), into the winner's diff path only.
/// Children (checkpoint names): <c>head</c>, <c>vq</c>, <c>head2</c>, <c>vq2</c>, <c>gn</c>,
/// <c>f</c> (f.0 Linear D2->F, f.1 BatchNorm, f.2 LeakyReLU, f.3 Linear F->D1), <c>mix</c>
/// (global heads only), <c>out</c>.
/// </summary>
internal sealed class MvqBottleneck : Bottleneck
{
    private readonly Chain _head, _head2, _out;
    private readonly VectorQuantizer _vq, _vq2;
    private readonly GroupNorm _gn;
    private readonly Sequential _f;
    private readonly Linear _f0, _f3;
    private readonly HypothesisBatchNorm _bn;
    private readonly TokenMix? _mix;
    private readonly Tensor _wta;
    private readonly int _l1, _d1, _l2, _d2, _hidden;
    private readonly float _slope, _dropRate;
    private readonly bool _fixedTrainBank;
    private readonly LossAttrs _lossAttrs = new();
    private uint[]? _evalBank, _trainBank, _override, _decodeWords;
    private uint[] _hostWords = [], _trainWords = [];
    private int _bankSeed, _evalJ;
    private int _batch;
    private bool _codesFromEvalBank;
    private Tensor? _wordsW, _dwta, _bestIdx;

    /// <summary>Builds the bottleneck of an "mvq" config (validated); parameters drawn from <paramref name="rng"/>.</summary>
    public MvqBottleneck(Backend backend, ModelConfig c, Random rng) : base(backend)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (!c.IsMvq || c.Secondary is null || c.Mvq is null) throw new ArgumentException("MvqBottleneck needs an mvq config with 'secondary' and 'mvq' sections");
        var m = c.Mvq;
        _l1 = c.PrimaryTokens; _d1 = c.CodeDim; _l2 = c.SecondaryTokens; _d2 = c.Secondary.CodeDim; _hidden = m.FHidden;
        _slope = c.Encoder.Slope; _dropRate = m.DropRate; _fixedTrainBank = m.FixedTrainBank;
        Hypotheses = m.Hypotheses; Chunk = m.Chunk;
        _bankSeed = m.BankSeed; _evalJ = m.EvalHypotheses;

        _head = AddChild("head", TokenHeads.Encode(backend, c, _l1, _d1, rng));
        _vq = AddChild("vq", new VectorQuantizer(backend, QuantizerFactory.Options(c.Quantizer, c.Codes, _d1, rng.Next()), rng));
        _head2 = AddChild("head2", TokenHeads.Encode(backend, c, _l2, _d2, rng));
        _vq2 = AddChild("vq2", new VectorQuantizer(backend, QuantizerFactory.Options(c.Quantizer, c.Secondary.Codes, _d2, rng.Next()), rng));
        _gn = AddChild("gn", new GroupNorm(backend, 1, _d2));
        _f0 = new Linear(backend, _d2, _hidden, rng);
        _bn = new HypothesisBatchNorm(backend, _hidden);
        _f3 = new Linear(backend, _hidden, _d1, rng);
        _f = AddChild("f", new Sequential(backend, _f0, _bn, new Activation(backend, ActivationKind.LeakyRelu, _slope), _f3));
        // U is the identity (no parameters) when both token grids coincide.
        if (c.Head != HeadKind.Grid) _mix = AddChild("mix", new TokenMix(backend, _l1, _l2, _d1, rng));
        _out = AddChild("out", TokenHeads.Decode(backend, c, _l1, _d1, rng));
        MaskSeed = rng.Next();
        _wta = backend.Zeros(1);
    }

    /// <summary>J, hypotheses per instance in training (fresh masks or the fixed training bank).</summary>
    public int Hypotheses { get; set; }

    /// <summary>Hypotheses scored per mvq_score call; any value gives the same winner.</summary>
    public int Chunk { get; set; }

    /// <summary>Seed of the training masks (saved in checkpoint metadata).</summary>
    public long MaskSeed { get; set; }

    /// <summary>Training forwards with fresh masks so far: the step input of the mask hash (saved in checkpoints).</summary>
    public ulong MaskStep { get; set; }

    /// <summary>Seed of the evaluation bank.</summary>
    public int BankSeed => _bankSeed;

    /// <summary>J_eval, the evaluation bank size: the vocabulary of w.</summary>
    public int EvalHypotheses => _evalJ;

    /// <summary>The evaluation bank: J_eval mask words (MaskHash.EvalBank(bank seed, J_eval, D2, p)).</summary>
    public uint[] EvalBank => _evalBank ??= MaskHash.EvalBank(_bankSeed, _evalJ, _d2, _dropRate);

    /// <summary>The main-path primary tokens L1, D1 and secondary L2, D2, and F.</summary>
    public (int L1, int D1, int L2, int D2, int F) Sizes => (_l1, _d1, _l2, _d2, _hidden);

    public Chain Head => _head;
    public Chain Head2 => _head2;
    public VectorQuantizer Secondary => _vq2;
    public GroupNorm Norm => _gn;
    public Linear F0 => _f0;
    public HypothesisBatchNorm BatchNorm => _bn;
    public Linear F3 => _f3;
    /// <summary>U, or null when it is the identity (grid heads).</summary>
    public TokenMix? Mix => _mix;

    /// <summary>
    /// Masks to use instead of the generated ones, words [B*J] (row-major [B, J], bit i = keep dim i),
    /// in training and evaluation alike, until cleared with null. For reference-state tests.
    /// </summary>
    public void OverrideMasks(uint[]? words) => _override = words is null ? null : (uint[])words.Clone();

    /// <summary>
    /// Mask words [B], one per instance, that <see cref="ForwardFromCodes"/> uses instead of the evaluation-bank
    /// word EvalBank[w] (w is still checked against the bank), until cleared with null. For mask traversals.
    /// </summary>
    public void OverrideDecodeWords(uint[]? words) => _decodeWords = words is null ? null : (uint[])words.Clone();

    /// <summary>
    /// When set (on a CUDA backend), fresh training masks are generated on the device by mask_words_step from
    /// this step counter (the same words as MaskHash.TrainWords), so a step uploads none; the trainer of a
    /// device-resident step sets it. MaskStep still counts on the host.
    /// </summary>
    public DeviceStepState? DeviceStep { get; set; }

    private bool _wordsOnDevice;
    private int _wordsPerInstance;

    /// <summary>The mask words [B*J] used by the last Forward (downloaded when they were made on the device).</summary>
    public uint[] LastWords => _wordsOnDevice
        ? System.Runtime.InteropServices.MemoryMarshal.Cast<int, uint>(Arena.GetInt("words", _batch, _wordsPerInstance).ToIntArray().AsSpan()).ToArray()
        : (uint[])_hostWords.Clone();

    /// <summary>Winning hypothesis per instance [B] (I32) of the last Forward.</summary>
    public Tensor Winners => _bestIdx ?? throw new InvalidOperationException("MvqBottleneck: Forward has not run");

    /// <summary>Distances d[b, j] [B, J] of the last Forward.</summary>
    public Tensor Distances => Arena.Get("dist", _batch, _wordsPerInstance);

    /// <summary>Mean and rstd [F] the last Forward used in f.1 (batch statistics in training, running ones in evaluation).</summary>
    public (Tensor Mean, Tensor Rstd) Statistics => (Arena.Get("bn_used_mean", _hidden), Arena.Get("bn_rstd", _hidden));

    /// <summary>Biased batch variance [F] of the last training Forward.</summary>
    public Tensor BatchVariance => Arena.Get("bn_var", _hidden);

    /// <summary>z1 [B*L1, D1] and Y_w [B*L1, D1] of the last training/evaluation Forward (tests).</summary>
    internal Tensor? Z1 { get; private set; }
    internal Tensor? YW { get; private set; }

    /// <summary>e = (q1 - z1) + U(f(m_w ⊙ g)) [B*L1, D1] of the last Forward: the winner's residual as mvq_score sums it (tests).</summary>
    internal Tensor? EW { get; private set; }

    /// <summary>The WTA loss d_w of the last Forward, a device scalar [1].</summary>
    public Tensor WtaLoss => _wta;

    public override VectorQuantizer Primary => _vq;
    public override IReadOnlyList<(string Name, VectorQuantizer Quantizer)> Quantizers => [("k1", _vq), ("k2", _vq2)];
    public override IReadOnlyList<(string Name, Tensor Value)> LossTerms => [("vq", _vq.Loss), ("vq2", _vq2.Loss), ("wta", _wta)];
    public override IReadOnlyList<CodeSegment> Segments =>
        [new("k1", 0, _l1, _vq.Options.Codes), new("k2", _l1, _l2, _vq2.Options.Codes), new("w", _l1 + _l2, 1, _evalJ)];

    /// <summary>h [B, c1, H', W'] -> decoder input for Y_w.</summary>
    public override Tensor Forward(Tensor h)
    {
        int b = h.Dim(0);
        _batch = b;
        var z1 = _head.Forward(h);
        var q1 = _vq.Forward(z1);
        var z2 = _head2.Forward(h);
        var q2 = _vq2.Forward(z2);
        var g = Normalise(q2, b);

        Tensor words;
        using (new Section(Backend, Timer, "mvq_masks")) words = DeviceWords(b) ?? UploadWords(ChooseWords(b), b);
        _wordsPerInstance = words.Dim(1);
        _codesFromEvalBank = !Training && _override is null;
        int j = words.Dim(1);
        using (new Section(Backend, Timer, "mvq_stats"))
            if (Training) BatchStatistics(g, words, b, j); else RunningStatistics();
        var scoring = new Section(Backend, Timer, "mvq_score");

        // Pass 2: score every hypothesis chunk by chunk; running argmin in bestIdx / bestDist.
        var resid = Arena.Get("resid", b, _l1, _d1);
        ElementwiseOps.Axpby.Run(Backend, [q1, z1], [resid.Reshape(b * _l1, _d1)], new AxpbyAttrs(1f, -1f));
        var bestIdx = Arena.GetInt("best_idx", b);
        var bestDist = Arena.Get("best_dist", b);
        var dist = Arena.Get("dist", b, j);
        bestIdx.Zero();
        bestDist.Fill(float.PositiveInfinity);
        var (mean, rstd) = Statistics;
        var scale = Arena.Get("bn_scale", _hidden);
        var shift = Arena.Get("bn_shift", _hidden);
        var g3 = g.Reshape(b, _l2, _d2);
        int chunk = Math.Max(1, Chunk);
        for (int j0 = 0; j0 < j; j0 += chunk)
            MvqScoreOps.RunScore(Backend, new MvqScoreAttrs(j0, Math.Min(chunk, j - j0), _slope, IdentityMix: _mix is null),
                g: g3, masks: words, w1: _f0.Weight.Value, b1: _f0.Bias.Value, bnScale: scale, bnShift: shift,
                w2: _f3.Weight.Value, b2: _f3.Bias.Value, mix: _mix?.Weight.Value, mixBias: _mix?.Bias.Value, resid: resid,
                bestIndex: bestIdx, bestDist: bestDist, dist: dist);
        _bestIdx = bestIdx;
        scoring.Dispose();

        // The winner, with ordinary differentiable ops.
        using var winner = new Section(Backend, Timer, "mvq_winner");
        var wordsW = Arena.GetInt("words_w", b);
        MvqOps.SelectWords.Run(Backend, [words, bestIdx], [wordsW]);
        _wordsW = wordsW;
        var y = WinnerPath(g, wordsW, q1, b, out var diff);
        // d_w from e = resid + diff, the sum mvq_score formed (not y - z1, which rounds differently):
        // the winner's distance is computed from the numbers it was chosen on. Its gradient 2e/n
        // goes into the diff path only (docs/model.md), as 2(Y_w - z1)/n would.
        var e = Arena.Get("e_w", b * _l1, _d1);
        ElementwiseOps.Add.Run(Backend, [resid.Reshape(b * _l1, _d1), diff], [e]);
        var zeros = Arena.Get("zeros_w", b * _l1, _d1);
        zeros.Zero();
        var dwta = Arena.Get("dwta", b * _l1, _d1);
        LossOps.Mse.Run(Backend, [e, zeros], [_wta, dwta], _lossAttrs);
        EW = e;
        _dwta = dwta;
        Z1 = z1; YW = y;
        return _out.Forward(y);
    }

    /// <summary>dy (decoder input gradient) -> dh, the sum of both heads' input gradients.</summary>
    public override Tensor Backward(Tensor dy)
    {
        if (_dwta is null || _wordsW is null) throw new InvalidOperationException("MvqBottleneck.Backward before Forward");
        int b = _batch;
        var dY = _out.Backward(dy);
        // The diff path gets the decoder gradient and the WTA gradient; c_base (-> z1) only the decoder's.
        var ddiff = Arena.Get("ddiff", b * _l1, _d1);
        ElementwiseOps.Add.Run(Backend, [dY, _dwta], [ddiff]);
        var dz1 = _vq.Backward(dY);
        var dfo = _mix is null ? ddiff : _mix.Backward(ddiff);
        var dxm = _f.Backward(dfo);
        var dg = Arena.Get("dg", b * _l2, _d2);
        MvqOps.MaskApply.Run(Backend, [dxm.Reshape(b, _l2, _d2), _wordsW], [dg.Reshape(b, _l2, _d2)]);
        var dgn = Arena.Get("dg_nchw", b, _d2, _l2, 1);
        LayoutOps.TokensToNchw.Run(Backend, [dg], [dgn]);
        var dq2n = _gn.Backward(dgn);
        var dq2 = Arena.Get("dq2", b * _l2, _d2);
        LayoutOps.NchwToTokens.Run(Backend, [dq2n], [dq2]);
        var dz2 = _vq2.Backward(dq2);
        var dh1 = _head.Backward(dz1);
        var dh2 = _head2.Backward(dz2);
        var dh = Arena.Get("dh", dh1.Shape);
        ElementwiseOps.Add.Run(Backend, [dh1, dh2], [dh]);
        return dh;
    }

    /// <summary>
    /// Codes of the last Forward: per instance k1 [L1], k2 [L2], w. Only an evaluation-mode Forward on the
    /// evaluation bank has codes: in training (or with overridden masks) w would index masks that
    /// <see cref="ForwardFromCodes"/> cannot reproduce.
    /// </summary>
    public override void ReadCodes(Span<int> dst)
    {
        if (!_codesFromEvalBank)
            throw new InvalidOperationException("ReadCodes: the last Forward was not an evaluation-mode forward on the evaluation bank (call SetTraining(false) and clear OverrideMasks first); its w would not index the bank");
        int b = _batch, len = _l1 + _l2 + 1;
        if (dst.Length < b * len) throw new ArgumentException($"ReadCodes: {dst.Length} slots for {b} codes of {len}");
        var k1 = _vq.Indices.ToIntArray(); var k2 = _vq2.Indices.ToIntArray(); var w = Winners.ToIntArray();
        for (int i = 0; i < b; i++)
        {
            k1.AsSpan(i * _l1, _l1).CopyTo(dst[(i * len)..]);
            k2.AsSpan(i * _l2, _l2).CopyTo(dst[(i * len + _l1)..]);
            dst[i * len + _l1 + _l2] = w[i];
        }
    }

    /// <summary>codes [B, L1 + L2 + 1] (w indexes the evaluation bank) -> decoder input, with the running statistics.</summary>
    public override Tensor ForwardFromCodes(Tensor codes)
    {
        int len = _l1 + _l2 + 1;
        if (codes.Length % len != 0) throw new ArgumentException($"MVQ codes must be [B, {len}], got [{codes.ShapeString}]");
        int b = codes.Length / len;
        _batch = b;
        _codesFromEvalBank = false; // no hypotheses were scored: Winners is not this batch's

        var host = codes.ToIntArray();
        var k1 = new int[b * _l1]; var k2 = new int[b * _l2]; var wordsHost = new int[b];
        var bank = EvalBank;
        if (_decodeWords is not null && _decodeWords.Length != b)
            throw new InvalidOperationException($"OverrideDecodeWords: {_decodeWords.Length} words for {b} codes");
        for (int i = 0; i < b; i++)
        {
            Array.Copy(host, i * len, k1, i * _l1, _l1);
            Array.Copy(host, i * len + _l1, k2, i * _l2, _l2);
            int w = host[i * len + _l1 + _l2];
            if ((uint)w >= (uint)bank.Length) throw new ArgumentOutOfRangeException(nameof(codes), $"winner index {w} of instance {i} outside the evaluation bank [0, {bank.Length})");
            wordsHost[i] = unchecked((int)(_decodeWords?[i] ?? bank[w]));
        }
        var t1 = Arena.GetInt("codes_k1", b * _l1); t1.CopyFrom(k1);
        var t2 = Arena.GetInt("codes_k2", b * _l2); t2.CopyFrom(k2);
        var q1 = Arena.Get("codes_q1", b * _l1, _d1);
        var q2 = Arena.Get("codes_q2", b * _l2, _d2);
        GatherOps.GatherRows.Run(Backend, [_vq.Codebook.Value, t1], [q1]);
        GatherOps.GatherRows.Run(Backend, [_vq2.Codebook.Value, t2], [q2]);
        var g = Normalise(q2, b);
        RunningStatistics();
        var wordsW = Arena.GetInt("words_w", b);
        wordsW.CopyFrom(wordsHost);
        _wordsW = wordsW;
        return _out.Forward(WinnerPath(g, wordsW, q1, b, out _));
    }

    public override IReadOnlyDictionary<string, string> Metadata => new Dictionary<string, string>
    {
        ["mvq.bank_seed"] = _bankSeed.ToString(CultureInfo.InvariantCulture),
        ["mvq.eval_hypotheses"] = _evalJ.ToString(CultureInfo.InvariantCulture),
        ["mvq.mask_seed"] = MaskSeed.ToString(CultureInfo.InvariantCulture),
        ["mvq.mask_step"] = MaskStep.ToString(CultureInfo.InvariantCulture),
    };

    public override void LoadMetadata(IReadOnlyDictionary<string, string> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        static long? Get(IReadOnlyDictionary<string, string> md, string key) =>
            !md.TryGetValue(key, out var s) ? null
            : long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ArgumentException($"checkpoint metadata '{key}' is not an integer: '{s}'");
        if (Get(metadata, "mvq.bank_seed") is long bs)
            _bankSeed = bs is >= int.MinValue and <= int.MaxValue ? (int)bs : throw new ArgumentException($"checkpoint metadata 'mvq.bank_seed' is outside the 32-bit range: {bs}");
        if (Get(metadata, "mvq.eval_hypotheses") is long ej)
        {
            if (ej is < 1 or > ConfigChecks.MaxCodes) throw new ArgumentException($"checkpoint metadata 'mvq.eval_hypotheses' must be from 1 to {ConfigChecks.MaxCodes}, got {ej}");
            _evalJ = checked((int)ej);
        }
        if (Get(metadata, "mvq.mask_seed") is long ms) MaskSeed = ms;
        if (metadata.TryGetValue("mvq.mask_step", out var st))
            MaskStep = ulong.TryParse(st, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
                : throw new ArgumentException($"checkpoint metadata 'mvq.mask_step' is not an integer: '{st}'");
        _evalBank = null;
        _trainBank = null;
    }

    /// <summary>g = GroupNorm(1, D2) of c [B*L2, D2] seen as [B, D2, L2]; returns tokens [B*L2, D2].</summary>
    private Tensor Normalise(Tensor c, int b)
    {
        var cn = Arena.Get("c_sec_nchw", b, _d2, _l2, 1);
        LayoutOps.TokensToNchw.Run(Backend, [c], [cn]);
        var gn = _gn.Forward(cn);
        var g = Arena.Get("g", b * _l2, _d2);
        LayoutOps.NchwToTokens.Run(Backend, [gn], [g]);
        return g;
    }

    /// <summary>The host mask words [B*J] of this forward: override, training masks (fresh or fixed bank) or the evaluation bank.</summary>
    private uint[] ChooseWords(int b)
    {
        if (_override is not null)
        {
            if (_override.Length == 0 || _override.Length % b != 0) throw new InvalidOperationException($"OverrideMasks: {_override.Length} words do not make [B={b}, J]");
            return _override;
        }
        if (!Training) return Expand(EvalBank, b);
        if (_fixedTrainBank)
        {
            // Re-drawn when J changes (Hypotheses is settable): the bank is the first J words of the fixed stream.
            if (_trainBank is null || _trainBank.Length != Hypotheses) _trainBank = MaskHash.Bank(MaskSeed, MaskHash.FixedTrainStep, Hypotheses, _d2, _dropRate);
            return Expand(_trainBank, b);
        }
        if (_trainWords.Length != b * Hypotheses) _trainWords = new uint[b * Hypotheses];
        var w = _trainWords;
        MaskHash.TrainWords(w, MaskSeed, MaskStep, _d2, _dropRate);
        MaskStep++;
        return w;
    }

    private static uint[] Expand(uint[] bank, int b)
    {
        var w = new uint[b * bank.Length];
        for (int i = 0; i < b; i++) bank.CopyTo(w, i * bank.Length);
        return w;
    }

    /// <summary>Fresh training masks made on the device from <see cref="DeviceStep"/>, or null when this forward takes another path.</summary>
    private Tensor? DeviceWords(int b)
    {
        if (DeviceStep is not { } state || !Training || _override is not null || _fixedTrainBank || Backend is not Backends.Cuda.CudaBackend cuda) return null;
        var t = Arena.GetInt("words", b, Hypotheses);
        // step = MaskStep - T + state[0]: this forward's MaskStep now, and one more per later replay of the same launch.
        Backends.Cuda.Kernels.CudaDeviceStep.MaskWords(cuda, t, b * Hypotheses, MaskHash.Seed(MaskSeed), unchecked(MaskStep - (ulong)state.T), state.Ptr,
            _d2, MaskHash.Threshold(_dropRate));
        MaskStep++;
        _wordsOnDevice = true;
        return t;
    }

    /// <summary>A graph replay ran this bottleneck's training forward once more: the host step counts it.</summary>
    public void CountReplayedStep() => MaskStep++;

    private Tensor UploadWords(uint[] words, int b)
    {
        _wordsOnDevice = false;
        _hostWords = words;
        var t = Arena.GetInt("words", b, words.Length / b);
        t.CopyFrom(MemoryMarshal.Cast<uint, int>(words.AsSpan()));
        return t;
    }

    /// <summary>Pass 1: batch mean and biased variance over all B*J*L2 rows, running update, fold.</summary>
    private void BatchStatistics(Tensor g, Tensor words, int b, int j)
    {
        var mean = Arena.Get("bn_used_mean", _hidden);
        var var_ = Arena.Get("bn_var", _hidden);
        MvqScoreOps.RunHiddenStats(Backend, g: g.Reshape(b, _l2, _d2), masks: words, w1: _f0.Weight.Value, b1: _f0.Bias.Value, mean: mean, var: var_);
        var attrs = new BatchNormAttrs(Count: (long)b * j * _l2);
        MvqOps.BnRunningUpdate.Run(Backend, [mean, var_], [_bn.RunningMean.Value, _bn.RunningVar.Value], attrs);
        Fold(mean, var_);
    }

    /// <summary>Evaluation statistics: the running buffers.</summary>
    private void RunningStatistics()
    {
        var mean = Arena.Get("bn_used_mean", _hidden);
        mean.CopyFrom(_bn.RunningMean.Value);
        Fold(mean, _bn.RunningVar.Value);
    }

    private static readonly BatchNormAttrs FoldAttrs = new();

    private void Fold(Tensor mean, Tensor var_)
    {
        var rstd = Arena.Get("bn_rstd", _hidden);
        MvqOps.RunBnFold(Backend, FoldAttrs, mean: mean, var: var_, gamma: _bn.Weight.Value, beta: _bn.Bias.Value,
            rstd: rstd, scale: Arena.Get("bn_scale", _hidden), shift: Arena.Get("bn_shift", _hidden));
        _bn.SetStatistics(mean, rstd);
    }

    /// <summary>Y_w = q1 + U(f(m_w ⊙ g)) [B*L1, D1].</summary>
    private Tensor WinnerPath(Tensor g, Tensor wordsW, Tensor q1, int b, out Tensor diff)
    {
        var xm = Arena.Get("xm", b * _l2, _d2);
        MvqOps.MaskApply.Run(Backend, [g.Reshape(b, _l2, _d2), wordsW], [xm.Reshape(b, _l2, _d2)]);
        var fo = _f.Forward(xm);
        diff = _mix is null ? fo : _mix.Forward(fo);
        var y = Arena.Get("y_w", b * _l1, _d1);
        ElementwiseOps.Add.Run(Backend, [q1, diff], [y]);
        return y;
    }

    public override void Dispose()
    {
        _wta.Dispose();
        base.Dispose();
    }

#pragma warning disable CA2255 // module initializers are how bottleneck kinds register themselves
    [ModuleInitializer]
    internal static void Register() => Autoencoder.BottleneckFactories[ModelKind.Mvq] = (b, c, rng) => new MvqBottleneck(b, c, rng);
#pragma warning restore CA2255
}
