// The vector-quantizer layer: nearest-code lookup with a straight-through backward,
// gradient or EMA codebook, usage statistics, dead-code restart and k-means init.
using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Quantizers;

/// <summary>
/// Quantizes tokens z [N, D] to their nearest codebook entries (squared L2, ties to the
/// smallest index). Forward returns q [N, D], the straight-through value (equal to the chosen
/// entries); Backward(dq) returns dz = dq + the commitment gradient, and in gradient mode
/// accumulates the codebook-loss gradient into <c>codebook</c>'s Grad.
/// <para>Parameters: <c>codebook</c> [K, D] (no weight decay; not trainable in EMA mode);
/// EMA mode adds the non-trainable <c>cluster_size</c> [K] and <c>embed_sum</c> [K, D] so that
/// they land in checkpoints.</para>
/// <para>In training mode Forward also updates the EMA codebook (after the lookup: the
/// returned q uses the codebook as it was), counts usage, runs k-means on the first batch when
/// asked, and every <see cref="VqOptions.RestartEvery"/> steps calls <see cref="RestartDeadCodes"/>.</para>
/// </summary>
internal sealed class VectorQuantizer : Module
{
    private readonly Random _rng;
    private readonly Parameter _codebook;
    private readonly Parameter? _clusterSize, _embedSum;
    private readonly Tensor _usage, _restartUsage, _mse;
    private readonly Parameter _steps;
    private readonly VqEmaAttrs _emaAttrs;
    private readonly AxpbyAttrs _lossAttrs;
    private VqBackwardAttrs _backwardAttrs;
    private float _lossWeight = 1f;
    private bool _kmeansDone;
    private Tensor? _z, _q, _idx;

    /// <param name="backend">Where the codebook and statistics live.</param>
    /// <param name="options">Codebook size K, dimension D, mode and the rest.</param>
    /// <param name="rng">Generator for init, restarts and k-means; null: new Random(options.Seed).</param>
    public VectorQuantizer(Backend backend, VqOptions options, Random? rng = null) : base(backend)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Codes < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Codes must be >= 1, got {options.Codes}");
        if (options.Dim < 1) throw new ArgumentOutOfRangeException(nameof(options), $"Dim must be >= 1, got {options.Dim}");
        if (options.Mode == VqMode.Ema && !(options.Decay >= 0 && options.Decay < 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"EMA decay must be in [0, 1), got {options.Decay}");
        Options = options;
        _rng = rng ?? new Random(options.Seed);
        int k = options.Codes, d = options.Dim;

        // U(-1/K, 1/K), the usual VQ-VAE codebook init.
        var init = new float[k * d];
        for (int i = 0; i < init.Length; i++) init[i] = (float)((_rng.NextDouble() * 2 - 1) / k);
        bool ema = options.Mode == VqMode.Ema;
        _codebook = AddParameter("codebook", backend.FromArray(init, k, d), decay: false, trainable: !ema);
        if (ema)
        {
            // cluster_size = 1 and embed_sum = codebook: consistent stats (codebook = embed_sum / n_k).
            var ones = new float[k]; Array.Fill(ones, 1f);
            _clusterSize = AddParameter("cluster_size", backend.FromArray(ones, k), decay: false, trainable: false);
            _embedSum = AddParameter("embed_sum", backend.FromArray(init, k, d), decay: false, trainable: false);
        }
        _usage = backend.Zeros(k);
        // Restart counts and the step counter are checkpointed (non-trainable) so a resumed run restarts exactly as an uninterrupted one.
        _restartUsage = AddParameter("restart_usage", backend.Zeros(k), decay: false, trainable: false).Value;
        _steps = AddParameter("steps", backend.Zeros(1), decay: false, trainable: false);
        _mse = backend.Zeros(1);
        Loss = backend.Zeros(1);
        _emaAttrs = new VqEmaAttrs(options.Decay, options.Eps);
        _lossAttrs = new AxpbyAttrs(ema ? options.Beta : 1 + options.Beta, 0f);
        _backwardAttrs = new VqBackwardAttrs(options.Beta, !ema, _lossWeight);
    }

    public VqOptions Options { get; }
    public int Codes => Options.Codes;
    public int Dim => Options.Dim;

    /// <summary>The codebook [K, D].</summary>
    public Parameter Codebook => _codebook;
    /// <summary>EMA cluster sizes [K] (EMA mode only).</summary>
    public Parameter? ClusterSize => _clusterSize;
    /// <summary>EMA embedding sums [K, D] (EMA mode only).</summary>
    public Parameter? EmbedSum => _embedSum;

    /// <summary>Code indices I32 [N] of the last Forward.</summary>
    public Tensor Indices => _idx ?? throw new InvalidOperationException("VectorQuantizer: Forward has not run");

    /// <summary>
    /// The VQ loss of the last Forward, a device scalar [1]: (1+beta) * mean((z-q)^2) in gradient
    /// mode (codebook + commitment terms), beta * mean((z-q)^2) in EMA mode.
    /// </summary>
    public Tensor Loss { get; }

    /// <summary>Weight of the VQ loss in the total loss; scales the gradients Backward adds (not dq).</summary>
    public float LossWeight
    {
        get => _lossWeight;
        set { _lossWeight = value; _backwardAttrs = _backwardAttrs with { LossScale = value }; }
    }

    /// <summary>Stores the step counter in the checkpointed `steps` buffer.</summary>
    protected override void BeforeSave() => _steps.Value.CopyFrom([(float)TrainingSteps]);

    /// <summary>Restores the step counter; k-means initialisation counts as done once any step ran.</summary>
    protected override void AfterLoad()
    {
        TrainingSteps = (int)_steps.Value.ToArray()[0];
        if (TrainingSteps > 0) _kmeansDone = true;
    }

    /// <summary>
    /// When true, the dead-code restart due at a step runs in <see cref="AfterStep"/> (called by the trainer once the
    /// whole step is queued) instead of inside Forward: a step whose work is captured as a CUDA graph must not contain
    /// host work. With an EMA codebook this gives the same result (the rest of the step does not read the codebook).
    /// </summary>
    public bool DeferRestarts { get; set; }

    private bool RestartDue => Options.RestartEvery > 0 && TrainingSteps % Options.RestartEvery == 0;

    /// <summary>A graph replay ran this quantizer's training forward once more: the host step count follows.</summary>
    public void CountReplayedStep() => TrainingSteps++;

    /// <summary>With <see cref="DeferRestarts"/>: runs the restart due at this step (host work, between steps).</summary>
    public void AfterStep()
    {
        if (DeferRestarts && _z is { } z && RestartDue)
            LastRestartCount = RestartDeadCodes(z, RestartRng());
    }

    /// <summary>Training-mode Forward calls so far.</summary>
    public int TrainingSteps { get; private set; }

    // The restart's generator from (seed, step) through a fixed mixer: HashCode.Combine is salted per process, which made
    // a restart (and every step after it) differ between two runs of the same command, and a resumed run from the
    // uninterrupted one.
    private Random RestartRng() =>
        new(unchecked((int)Mvq.MaskHash.Mix(((ulong)(uint)Options.Seed << 32) | (uint)TrainingSteps)));

    /// <summary>Entries re-seeded by the most recent restart.</summary>
    public int LastRestartCount { get; private set; }

    /// <summary>Usage counts [K] since <see cref="ResetUsage"/> (training and evaluation alike).</summary>
    public Tensor Usage => _usage;

    /// <param name="z">Tokens [N, D].</param>
    /// <returns>q [N, D], the chosen entries (straight-through value); valid until the next Forward.</returns>
    public override Tensor Forward(Tensor z)
    {
        if (z.Rank != 2 || z.Dim(1) != Dim) throw new ArgumentException($"VectorQuantizer: z must be [N, {Dim}], got [{z.ShapeString}]");
        int n = z.Dim(0);
        if (Training && Options.KMeansInit && !_kmeansDone && n > 0)
        {
            InitializeKMeans(z);
            _kmeansDone = true;
        }
        var idx = Arena.GetInt("idx", n);
        var q = Arena.Get("q", n, Dim);
        VqOps.Lookup.Run(Backend, [z, _codebook.Value], [idx, q]);
        VqOps.Loss.Run(Backend, [z, q], [_mse]);
        ElementwiseOps.Axpby.Run(Backend, [_mse, _mse], [Loss], _lossAttrs);
        VqOps.Histogram.Run(Backend, [idx], [_usage]);
        if (Training)
        {
            VqOps.Histogram.Run(Backend, [idx], [_restartUsage]);
            if (Options.Mode == VqMode.Ema)
                VqOps.EmaUpdate.Run(Backend, [z, idx], [_codebook.Value, _clusterSize!.Value, _embedSum!.Value], _emaAttrs);
            TrainingSteps++;
            if (!DeferRestarts && RestartDue)
                LastRestartCount = RestartDeadCodes(z, RestartRng());
        }
        _z = z; _q = q; _idx = idx;
        return q;
    }

    /// <param name="dq">Gradient of the loss with respect to q [N, D].</param>
    /// <returns>dz [N, D] = dq + LossWeight * beta * 2 (z - q) / (N D).</returns>
    public override Tensor Backward(Tensor dq)
    {
        if (_z is null || _q is null || _idx is null) throw new InvalidOperationException("VectorQuantizer: Backward before Forward");
        if (!dq.SameShape(_z)) throw new ArgumentException($"VectorQuantizer: dq [{dq.ShapeString}] does not match z [{_z.ShapeString}]");
        var dz = Arena.Get("dz", _z.Shape);
        VqOps.BackwardOp.Run(Backend, [_z, _q, _idx, dq], [dz, _codebook.Grad], _backwardAttrs);
        return dz;
    }

    /// <summary>
    /// Re-seeds every entry whose usage since the last restart is below
    /// DeadThreshold * (tokens counted since then) / K with a randomly drawn row of
    /// <paramref name="z"/> [N, D] plus Gaussian noise (RestartNoise * RMS of z); in EMA mode
    /// its cluster_size becomes 1 and its embed_sum the new entry. Other entries are left
    /// bit-identical. Resets the restart usage counts. Runs on the host (it is rare).
    /// </summary>
    /// <returns>How many entries were re-seeded.</returns>
    public int RestartDeadCodes(Tensor z, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (z.Rank != 2 || z.Dim(1) != Dim) throw new ArgumentException($"VectorQuantizer: z must be [N, {Dim}], got [{z.ShapeString}]");
        int n = z.Dim(0), k = Codes, d = Dim;
        var usage = _restartUsage.ToArray();
        _restartUsage.Zero();
        double total = 0;
        foreach (var u in usage) total += u;
        double threshold = Options.DeadThreshold * total / k;
        var dead = new List<int>();
        for (int j = 0; j < k; j++) if (usage[j] < threshold) dead.Add(j);
        if (dead.Count == 0 || n == 0) return 0;

        var zh = z.ToArray();
        var cb = _codebook.Value.ToArray();
        double ms = 0;
        foreach (var v in zh) ms += (double)v * v;
        double noise = Options.RestartNoise * Math.Sqrt(ms / zh.Length);
        // Draw distinct rows while there are enough (partial Fisher-Yates), then with replacement.
        var rows = new int[n];
        for (int i = 0; i < n; i++) rows[i] = i;
        for (int t = 0; t < dead.Count; t++)
        {
            int r;
            if (t < n) { int s = t + rng.Next(n - t); (rows[t], rows[s]) = (rows[s], rows[t]); r = rows[t]; }
            else r = rng.Next(n);
            int o = dead[t] * d;
            for (int j = 0; j < d; j++) cb[o + j] = (float)(zh[r * d + j] + noise * Gaussian(rng));
        }
        _codebook.Value.CopyFrom(cb);
        if (Options.Mode == VqMode.Ema)
        {
            var cs = _clusterSize!.Value.ToArray();
            var es = _embedSum!.Value.ToArray();
            foreach (var j in dead)
            {
                cs[j] = 1f;
                Array.Copy(cb, j * d, es, j * d, d);
            }
            _clusterSize.Value.CopyFrom(cs);
            _embedSum.Value.CopyFrom(es);
        }
        return dead.Count;
    }

    /// <summary>Sets the codebook by k-means (k-means++ seeding) on the rows of <paramref name="z"/> [N, D]; EMA stats follow (cluster_size 1, embed_sum = codebook).</summary>
    public void InitializeKMeans(Tensor z)
    {
        if (z.Rank != 2 || z.Dim(1) != Dim) throw new ArgumentException($"VectorQuantizer: z must be [N, {Dim}], got [{z.ShapeString}]");
        var centres = KMeans.Fit(z.ToArray(), z.Dim(0), Dim, Codes, Options.KMeansIterations, _rng);
        _codebook.Value.CopyFrom(centres);
        if (Options.Mode == VqMode.Ema)
        {
            _clusterSize!.Value.Fill(1f);
            _embedSum!.Value.CopyFrom(centres);
        }
        _kmeansDone = true;
    }

    /// <summary>Usage counts [K] since the last <see cref="ResetUsage"/>, downloaded.</summary>
    public float[] UsageCounts() => _usage.ToArray();

    public void ResetUsage() => _usage.Zero();

    /// <summary>exp(entropy) of the usage distribution: K when uniform, 1 when one code takes all; 0 with no usage.</summary>
    public double Perplexity()
    {
        var u = UsageCounts();
        double total = 0;
        foreach (var v in u) total += v;
        if (total <= 0) return 0;
        double h = 0;
        foreach (var v in u) if (v > 0) { double p = v / total; h -= p * Math.Log(p); }
        return Math.Exp(h);
    }

    /// <summary>Fraction of the K entries used at least once since the last reset.</summary>
    public double UsedFraction()
    {
        var u = UsageCounts();
        int used = 0;
        foreach (var v in u) if (v > 0) used++;
        return (double)used / u.Length;
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public override void Dispose()
    {
        _usage.Dispose(); _mse.Dispose(); Loss.Dispose();
        base.Dispose();
    }
}
