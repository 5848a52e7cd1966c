// PriorTrainer.cs: training loop of the prior over cached codes (AdamW, warmup + cosine, clipping), its batcher,
// and the held-out evaluation (NLL in nats per token and bits per image, unigram baselines).
using System.Diagnostics;
using MvqNative.Backends;
using MvqNative.Data;
using MvqNative.Ops;
using MvqNative.Optim;
using MvqNative.Tensors;
using MvqNative.Training;

namespace MvqNative.Prior;

/// <summary>Figures of one logged prior step.</summary>
internal sealed record PriorStepStats(int Step, double Loss, double BitsPerToken, double GradNorm, float Lr, double MsPerStep, double TokensPerSecond);

/// <summary>
/// Batches of code rows: epoch e visits the rows in a Fisher-Yates permutation from Random(Batcher.SeedFor(seed, e))
/// (as <see cref="Batcher"/> does for images); batches wrap across epochs; the state is (epoch, position).
/// </summary>
internal sealed class CodeBatcher
{
    private readonly int _count, _seed;
    private readonly int[] _perm;
    private long _permEpoch = -1;

    public CodeBatcher(int count, int batchSize, int seed)
    {
        if (count < 1) throw new ArgumentException("no codes to train on");
        _count = count; BatchSize = batchSize; _seed = seed;
        _perm = new int[count];
    }

    public int BatchSize { get; }
    public long Epoch { get; private set; }
    public long Position { get; private set; }

    public void Restore(long epoch, long position)
    {
        if (epoch < 0 || position < 0 || position >= _count) throw new ArgumentOutOfRangeException(nameof(position), $"batcher state ({epoch}, {position}) outside [0, {_count})");
        Epoch = epoch; Position = position;
    }

    /// <summary>Fills <paramref name="rows"/> [BatchSize] with the next row indices.</summary>
    public void Next(Span<int> rows)
    {
        for (int b = 0; b < BatchSize; b++)
        {
            if (_permEpoch != Epoch)
            {
                for (int i = 0; i < _count; i++) _perm[i] = i;
                var rng = new Random(Batcher.SeedFor(_seed, Epoch));
                for (int i = _count - 1; i > 0; i--) { int j = rng.Next(i + 1); (_perm[i], _perm[j]) = (_perm[j], _perm[i]); }
                _permEpoch = Epoch;
            }
            rows[b] = _perm[Position];
            if (++Position == _count) { Position = 0; Epoch++; }
        }
    }
}

/// <summary>
/// Trains a <see cref="TransformerPrior"/> on codes [N, T] (local ids per segment): per step a batch of rows,
/// inputs/targets by the layout, forward, segment-masked cross-entropy, backward, clipped AdamW at the
/// warmup + cosine learning rate. Logging steps (every LogEvery) are the only host synchronisations.
/// </summary>
internal sealed class PriorTrainer : IDisposable
{
    private readonly Backend _backend;
    private readonly int[] _codes;
    private readonly int _t;
    private readonly int[] _rows, _batchCodes, _hostIn, _hostTg;
    private readonly Tensor _in, _tg, _bounds;
    // Every step's losses (through their sum of squares) and gradient norm, read only when logging or saving.
    private readonly HealthFlag _health;
    private readonly Tensor _lossSq;
    private readonly PriorLoss _loss;
    private readonly Stopwatch _clock = new();
    private int _sinceLog;

    public PriorTrainer(Backend backend, TransformerPrior model, TrainConfig config, int[] codes)
    {
        _backend = backend;
        Model = model;
        Config = config;
        _t = model.Layout.Length;
        if (codes.Length % _t != 0 || codes.Length == 0) throw new ArgumentException($"codes hold {codes.Length} ints, not a positive multiple of T = {_t}");
        _codes = codes;
        Batcher = new CodeBatcher(codes.Length / _t, config.Batch, config.Seed);
        Optimizer = new AdamW(model.Parameters(), config.Lr, config.Beta1, config.Beta2, 1e-8f, config.WeightDecay, config.ClipNorm);
        _rows = new int[config.Batch];
        _batchCodes = new int[config.Batch * _t];
        _hostIn = new int[config.Batch * _t]; _hostTg = new int[config.Batch * _t];
        _health = new HealthFlag(backend);
        _lossSq = backend.Zeros(1);
        _in = backend.EmptyInt(config.Batch, _t);
        _tg = backend.EmptyInt(config.Batch * _t);
        _bounds = backend.FromArray(model.Layout.BoundsArray(config.Batch), config.Batch * _t, 2);
        _loss = new PriorLoss(backend);
        model.SetTraining(true);
    }

    public TransformerPrior Model { get; }
    public TrainConfig Config { get; }
    public CodeBatcher Batcher { get; }
    public AdamW Optimizer { get; }
    public int Step { get; set; }

    public float LearningRate(int step) => LrSchedule.WarmupCosine(step, Config.WarmupSteps, Config.Steps, Config.Lr, Config.MinLr);

    /// <summary>One step; figures on logging steps (or when forced), else null.</summary>
    public PriorStepStats? TrainStep(bool forceLog = false)
    {
        if (!_clock.IsRunning) _clock.Start();
        Batcher.Next(_rows);
        for (int b = 0; b < _rows.Length; b++) _codes.AsSpan(_rows[b] * _t, _t).CopyTo(_batchCodes.AsSpan(b * _t));
        Model.Layout.ToInputsTargets(_batchCodes, _hostIn, _hostTg);
        _in.CopyFrom(_hostIn); _tg.CopyFrom(_hostTg);
        Optimizer.ZeroGrad();
        Model.DropoutStep = Step;
        var logits = Model.Forward(_in);
        _loss.Compute(logits, _tg, _bounds);
        Model.Backward(_loss.Grad);
        float lr = LearningRate(Step);
        Optimizer.Step(lr);
        _lossSq.Zero();
        ReduceOps.SumSquares.Run(_backend, [_loss.Losses], [_lossSq]);
        _health.Add(_lossSq);
        if (Optimizer.GradNormSquared is Tensor gns) _health.Add(gns);
        Step++;
        _sinceLog++;
        if (!forceLog && Step % Config.LogEvery != 0 && Step != Config.Steps) return null;
        double loss = _loss.ReadSum() / (_rows.Length * _t);
        double gn = Optimizer.LastGradNorm;
        if (!double.IsFinite(loss)) throw new TrainingDivergedException(Step, "the loss");
        if (!double.IsFinite(gn)) throw new TrainingDivergedException(Step, "the gradient norm");
        if (Diverged) throw new TrainingDivergedException(Step, "the loss or the gradient norm of a recent step");
        _backend.Synchronize();
        double ms = _clock.Elapsed.TotalMilliseconds / _sinceLog;
        _clock.Restart();
        _sinceLog = 0;
        return new PriorStepStats(Step, loss, loss / Math.Log(2), gn, lr, ms, _rows.Length * _t * 1000.0 / ms);
    }

    /// <summary>
    /// True when some step since this trainer started had a non-finite loss or gradient norm. Reads one device scalar
    /// (a host synchronisation): call it when logging or saving, not every step.
    /// </summary>
    public bool Diverged => _health.Diverged;

    public void Dispose()
    {
        _in.Dispose(); _tg.Dispose(); _bounds.Dispose(); _loss.Dispose(); _health.Dispose(); _lossSq.Dispose();
        Optimizer.Dispose();
    }
}

/// <summary>Held-out figures of a prior: NLL, and the unigram baselines it must beat.</summary>
internal sealed record PriorEvalReport(int Images, int TokensPerImage, double NatsPerToken, double BitsPerImage,
    double UnigramPositionBitsPerImage, double UnigramSegmentBitsPerImage, IReadOnlyDictionary<string, double> BitsPerImageBySegment);

internal static class PriorEvaluator
{
    /// <summary>
    /// NLL of <paramref name="codes"/> [N, T] under the prior (teacher forcing, evaluation mode), and two
    /// baselines of independent tokens with their empirical frequencies in <paramref name="trainCodes"/>
    /// (add-one smoothed): one distribution per position, and one per segment (pooled over its positions).
    /// </summary>
    public static PriorEvalReport Run(TransformerPrior model, int[] codes, int[] trainCodes, int batch = 256)
    {
        var layout = model.Layout;
        int t = layout.Length, n = codes.Length / t;
        var backend = model.Backend;
        model.SetTraining(false);
        double total = 0;
        var bySeg = new double[layout.Segments.Count];
        using var loss = new PriorLoss(backend);
        for (int start = 0; start < n; start += batch)
        {
            int b = Math.Min(batch, n - start);
            var hin = new int[b * t]; var htg = new int[b * t];
            layout.ToInputsTargets(codes.AsSpan(start * t, b * t), hin, htg);
            using var tin = backend.FromArray(hin, b, t);
            using var ttg = backend.FromArray(htg, b * t);
            using var tb = backend.FromArray(layout.BoundsArray(b), b * t, 2);
            var logits = model.Forward(tin);
            loss.Compute(logits, ttg, tb, grad: false);
            var per = loss.Losses.ToArray();
            for (int i = 0; i < per.Length; i++)
            {
                total += per[i];
                bySeg[SegmentOf(layout, i % t)] += per[i];
            }
        }
        model.SetTraining(true);
        double ln2 = Math.Log(2);
        var segBits = new Dictionary<string, double>();
        for (int s = 0; s < bySeg.Length; s++) segBits[layout.Segments[s].Name] = bySeg[s] / n / ln2;
        return new PriorEvalReport(n, t, total / (n * (double)t), total / n / ln2,
            UnigramBits(layout, codes, trainCodes, perPosition: true), UnigramBits(layout, codes, trainCodes, perPosition: false), segBits);
    }

    private static int SegmentOf(CodeLayout layout, int pos)
    {
        for (int s = 0; s < layout.Segments.Count; s++)
            if (pos < layout.Segments[s].Start + layout.Segments[s].Length) return s;
        throw new ArgumentOutOfRangeException(nameof(pos));
    }

    /// <summary>Bits per image of <paramref name="codes"/> under independent tokens with add-one smoothed train frequencies.</summary>
    public static double UnigramBits(CodeLayout layout, int[] codes, int[] trainCodes, bool perPosition)
    {
        int t = layout.Length;
        // counts[key][token], key = position or segment
        int keys = perPosition ? t : layout.Segments.Count;
        int Key(int pos) => perPosition ? pos : SegmentOf(layout, pos);
        var counts = new double[keys][];
        for (int k = 0; k < keys; k++) counts[k] = new double[layout.Segments[perPosition ? SegmentOf(layout, k) : k].Vocabulary];
        for (int i = 0; i < trainCodes.Length; i++) counts[Key(i % t)][trainCodes[i]] += 1;
        var totals = counts.Select(c => c.Sum() + c.Length).ToArray();
        double bits = 0;
        for (int i = 0; i < codes.Length; i++)
        {
            int k = Key(i % t);
            bits -= Math.Log2((counts[k][codes[i]] + 1) / totals[k]);
        }
        return bits / (codes.Length / t);
    }
}
