// The AdamW optimiser: the global gradient norm and the fused step of every parameter in one op
// (adamw_multi), on every backend.
using MvqNative.Backends;
using MvqNative.Layers;
using MvqNative.Ops;
using MvqNative.Tensors;

namespace MvqNative.Optim;

/// <summary>
/// AdamW with PyTorch semantics (decoupled weight decay, bias correction) and clipping by
/// the global gradient norm (clip_grad_norm_). The norm is reduced into a device scalar
/// that the update reads, so a step never waits for the host. Parameters with Decay=false
/// get no weight decay; parameters with Trainable=false are ignored. A step is one adamw_multi
/// call over all parameters (on CUDA two launches, whatever the parameter count); with
/// <see cref="MultiTensor"/> off, sum_squares and adamw_step run per parameter instead.
/// </summary>
internal sealed class AdamW : IDisposable
{
    private readonly Parameter[] _params;
    private readonly Tensor[] _m, _v;
    private readonly Tensor? _gradNormSq;
    private readonly Backend? _backend;
    // adamw_multi's arguments, built once: the gradients, and gradNormSq then (param, m, v) per parameter.
    private readonly Tensor[] _multiIn = [], _multiOut = [];
    private readonly bool[] _decay;
    private readonly GradientArena? _grads;

    /// <param name="parameters">The model's parameters (non-trainable ones are skipped).</param>
    /// <param name="lr">Default learning rate (<see cref="Step()"/>).</param>
    /// <param name="beta1">First-moment decay.</param>
    /// <param name="beta2">Second-moment decay.</param>
    /// <param name="eps">Denominator epsilon.</param>
    /// <param name="weightDecay">Decoupled weight decay (applied to Decay=true parameters only).</param>
    /// <param name="clipNorm">Global gradient-norm clip; 0 or less disables clipping.</param>
    public AdamW(IEnumerable<Parameter> parameters, float lr = 5e-4f, float beta1 = 0.9f, float beta2 = 0.999f,
        float eps = 1e-8f, float weightDecay = 0.0f, float clipNorm = 1.0f)
    {
        _params = parameters.Where(p => p.Trainable).ToArray();
        _backend = _params.Length > 0 ? _params[0].Value.Backend : null;
        foreach (var p in _params)
            if (p.Value.Backend != _backend) throw new ArgumentException($"AdamW: parameter {p.Name} lives on {p.Value.Backend.Name}, others on {_backend!.Name}");
        // One buffer for all gradients: ZeroGrad is one fill (one memset on CUDA) instead of one per parameter.
        _grads = _backend is null ? null : new GradientArena(_backend, _params);
        _m = _params.Select(p => p.Value.Backend.Zeros(p.Value.Shape)).ToArray();
        _v = _params.Select(p => p.Value.Backend.Zeros(p.Value.Shape)).ToArray();
        _gradNormSq = _backend?.Zeros(1);
        _decay = [.. _params.Select(p => p.Decay)];
        if (_gradNormSq is not null)
        {
            _multiIn = [.. _params.Select(p => p.Grad)];
            _multiOut = [_gradNormSq, .. _params.SelectMany((p, i) => new[] { p.Value, _m[i], _v[i] })];
        }
        Lr = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay; ClipNorm = clipNorm;
    }

    public float Lr { get; set; }
    public float Beta1 { get; set; }
    public float Beta2 { get; set; }
    public float Eps { get; set; }
    public float WeightDecay { get; set; }
    public float ClipNorm { get; set; }

    /// <summary>
    /// Whether <see cref="Step(float)"/> runs adamw_multi over all parameters (the default). Off:
    /// sum_squares and adamw_step per parameter (tests compare the two; on the CPU they are bit-identical).
    /// </summary>
    internal bool MultiTensor { get; set; } = true;

    /// <summary>Steps taken (the bias-correction step count of the last step).</summary>
    public int StepCount { get; set; }

    /// <summary>The trainable parameters this optimiser updates.</summary>
    public IReadOnlyList<Parameter> Parameters => _params;

    /// <summary>One step at <see cref="Lr"/>.</summary>
    public void Step() => Step(Lr);

    /// <summary>One step at <paramref name="lr"/>: the global grad norm, then the AdamW update of every parameter.</summary>
    public void Step(float lr)
    {
        StepCount++;
        if (_backend is null) return;
        var decayed = new AdamWAttrs(lr, Beta1, Beta2, Eps, WeightDecay, StepCount, ClipNorm);
        if (MultiTensor)
        {
            if (_schedule is { } sched)
                Backends.Cuda.Kernels.CudaOptimizer.MultiScheduled((Backends.Cuda.CudaBackend)_backend, _multiIn, _multiOut, new AdamWMultiAttrs(decayed, _decay), sched, _scheduleState);
            else OptimizerOps.AdamWMulti.Run(_backend, _multiIn, _multiOut, new AdamWMultiAttrs(decayed, _decay));
            return;
        }
        _gradNormSq!.Zero();
        foreach (var p in _params) ReduceOps.SumSquares.Run(_backend, [p.Grad], [_gradNormSq]);
        var plain = decayed with { WeightDecay = 0f };
        for (int i = 0; i < _params.Length; i++)
        {
            var p = _params[i];
            OptimizerOps.AdamWStep.Run(_backend, [p.Grad, _gradNormSq], [p.Value, _m[i], _v[i]], p.Decay ? decayed : plain);
        }
    }

    private Tensor? _schedule;
    private ulong _scheduleState;

    /// <summary>
    /// On CUDA (multi-tensor path): from now on <see cref="Step(float)"/> ignores its lr and the host step count in
    /// the launch and reads row state[0] - state[1] of <paramref name="schedule"/> [rows, 3] (built by
    /// <see cref="ScheduleRow"/>) on the device, so the launch is the same every step (graph-replayable).
    /// <see cref="StepCount"/> still counts on the host. Null restores the host scalars.
    /// </summary>
    internal void UseDeviceSchedule(Tensor? schedule, ulong state)
    {
        if (schedule is not null && (_backend is not Backends.Cuda.CudaBackend || !MultiTensor))
            throw new InvalidOperationException("AdamW: a device schedule needs the multi-tensor path on a CUDA backend");
        _schedule = schedule; _scheduleState = state;
    }

    /// <summary>True when the step scalars come from a device schedule (<see cref="UseDeviceSchedule"/>).</summary>
    internal bool HasDeviceSchedule => _schedule is not null;

    /// <summary>{step size, sqrt(bias correction 2), decay multiplier} of a step at <paramref name="lr"/> with bias-correction step <paramref name="step"/>: what the eager launch passes.</summary>
    internal (float StepSize, float Bc2Sqrt, float DecayMul) ScheduleRow(float lr, int step)
    {
        var s = AdamWScalars.Of(new AdamWAttrs(lr, Beta1, Beta2, Eps, WeightDecay, step, ClipNorm), 0);
        return (s.StepSize, s.Bc2Sqrt, s.DecayMul);
    }

    /// <summary>Zeroes the gradients of the trainable parameters.</summary>
    public void ZeroGrad() => _grads?.Zero();

    /// <summary>The device scalar holding the squared global gradient norm of the last step (null without parameters).</summary>
    public Tensor? GradNormSquared => _gradNormSq;

    /// <summary>Global gradient norm (before clipping) of the last step. Downloads: call only when logging.</summary>
    public float LastGradNorm => _gradNormSq is null ? 0f : MathF.Sqrt(_gradNormSq.ToArray()[0]);

    /// <summary>First and second moments [same shape as the parameter] by parameter name, for checkpoints.</summary>
    public IEnumerable<(string Name, Tensor M, Tensor V)> State
    {
        get
        {
            for (int i = 0; i < _params.Length; i++) yield return (_params[i].Name, _m[i], _v[i]);
        }
    }

    /// <summary>
    /// Restores the step count and every trainable parameter's moments from <paramref name="state"/>
    /// (tensors on any backend). Throws on an unknown name, a shape mismatch or a missing parameter.
    /// </summary>
    public void LoadState(int stepCount, IEnumerable<(string Name, Tensor M, Tensor V)> state)
    {
        if (stepCount < 0) throw new ArgumentOutOfRangeException(nameof(stepCount));
        var byName = new Dictionary<string, int>();
        for (int i = 0; i < _params.Length; i++)
            if (!byName.TryAdd(_params[i].Name, i)) throw new InvalidOperationException($"AdamW: two parameters are named {_params[i].Name}");
        var seen = new HashSet<int>();
        foreach (var (name, m, v) in state)
        {
            if (!byName.TryGetValue(name, out int i)) throw new KeyNotFoundException($"AdamW state: no trainable parameter named {name}");
            if (!m.SameShape(_m[i]) || !v.SameShape(_v[i]))
                throw new ArgumentException($"AdamW state {name}: moments [{m.ShapeString}]/[{v.ShapeString}], parameter [{_m[i].ShapeString}]");
            Load(_m[i], m); Load(_v[i], v);
            seen.Add(i);
        }
        var missing = Enumerable.Range(0, _params.Length).Where(i => !seen.Contains(i)).Select(i => _params[i].Name).ToList();
        if (missing.Count > 0) throw new KeyNotFoundException("AdamW state lacks: " + string.Join(", ", missing));
        StepCount = stepCount;
    }

    private static void Load(Tensor dst, Tensor src)
    {
        if (src.Backend == dst.Backend) dst.CopyFrom(src);
        else dst.CopyFrom((ReadOnlySpan<float>)src.ToArray());
    }

    public void Dispose()
    {
        foreach (var t in _m) t.Dispose();
        foreach (var t in _v) t.Dispose();
        _gradNormSq?.Dispose();
        _grads?.Release();
    }
}
