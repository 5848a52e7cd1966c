using System.Diagnostics;
using MvqNative.Backends;
using MvqNative.Backends.Cuda;
using MvqNative.Backends.Cuda.Kernels;
using MvqNative.Data;
using MvqNative.Layers;
using MvqNative.Models;
using MvqNative.Ops;
using MvqNative.Optim;
using MvqNative.Tensors;

namespace MvqNative.Training;

/// <summary>Figures of one logged step.</summary>
internal sealed record StepStats(int Step, double Loss, double Reconstruction, IReadOnlyDictionary<string, double> Terms, double GradNorm, float Lr, double MsPerStep, double ImagesPerSecond);

/// <summary>
/// Raised when a loss, the gradient norm, a weight or an optimiser moment stops being finite. No checkpoint is
/// written from that state; <paramref name="kept"/> says what stays on disk (the caller knows which step it holds).
/// </summary>
public sealed class TrainingDivergedException(int step, string what, string kept = "the last checkpoint is kept")
    : Exception($"training diverged by step {step}: {what} is not finite; {kept}")
{
    /// <summary>The step at which the divergence was seen (it happened at this step or before).</summary>
    public int Step { get; } = step;
    /// <summary>What was not finite.</summary>
    public string What { get; } = what;
}

/// <summary>
/// How a <see cref="Trainer"/> runs its steps on a GPU (docs/perf/gpu-throughput.md).
/// </summary>
/// <param name="DeviceData">
/// The dataset is uploaded once and each batch is gathered on the device in <see cref="HashSampler"/> order (on
/// the CPU backend: the same order, copied on the host); MVQ masks are made on the device and AdamW reads its
/// per-step scalars from a device table, so a step copies nothing from the host. Off: the <see cref="Batcher"/>'s
/// shuffled order, uploaded per step (the CPU reference trajectory).
/// </param>
/// <param name="CudaGraphs">With <paramref name="DeviceData"/> on a CUDA backend: after two eager steps the step is captured once as a CUDA graph and replayed.</param>
/// <param name="PinnedData">
/// For a dataset kept on the host (too large for the device, or device data off) on a CUDA backend: the same steps
/// and batch order as <paramref name="DeviceData"/>, but each batch is assembled on the host into one of two pinned
/// buffers and copied asynchronously on a second stream, the step waiting for its copy on the device
/// (<see cref="CudaBatchStager"/>); no host synchronisation inside a step. Eager steps (no graph). Ignored when
/// <paramref name="DeviceData"/> is on; on the CPU backend it runs the same order as DeviceData.
/// </param>
internal sealed record TrainerOptions(bool DeviceData = false, bool CudaGraphs = false, bool PinnedData = false)
{
    /// <summary>The reference path: host batches in shuffled order, eager steps.</summary>
    public static readonly TrainerOptions Default = new();
}

/// <summary>
/// The training loop: batches, forward, losses, backward, clipped AdamW with warmup + cosine,
/// logging every <see cref="TrainConfig.LogEvery"/> steps (the only host synchronisation of a
/// step), checkpoints. Resuming from a checkpoint reproduces the loss trajectory exactly on the CPU.
/// </summary>
internal sealed class Trainer : IDisposable
{
    private readonly Backend _backend;
    private readonly ImageDataset _data;
    private readonly float[] _host;
    private readonly Tensor _x;
    private readonly ReconstructionLoss _rec;
    private readonly Stopwatch _clock = new();
    private int _stepsSinceLog;
    // Every loss term and the gradient norm of every step, read only when logging or saving.
    private readonly HealthFlag _health;

    public Trainer(Backend backend, Autoencoder model, TrainConfig config, ImageDataset data, TrainerOptions? options = null)
    {
        _backend = backend;
        Model = model;
        Config = config;
        _data = data;
        var im = model.Config.Image;
        if (data.Channels != im.Channels || data.Height != im.Height || data.Width != im.Width)
            throw new ArgumentException($"dataset {data.Name} has images {data.Channels}x{data.Height}x{data.Width}, the model expects {im.Channels}x{im.Height}x{im.Width}");
        Batcher = new Batcher(data, config.Batch, config.Seed);
        Optimizer = new AdamW(model.Parameters(), config.Lr, config.Beta1, config.Beta2, 1e-8f, config.WeightDecay, config.ClipNorm);
        _host = new float[config.Batch * im.Channels * im.Height * im.Width];
        _x = backend.Empty(config.Batch, im.Channels, im.Height, im.Width);
        _rec = new ReconstructionLoss(backend, model.Config.Loss);
        _health = new HealthFlag(backend);
        model.SetTraining(true);
        Options = options ?? TrainerOptions.Default;
    }

    /// <summary>How steps run (device data, CUDA graphs).</summary>
    public TrainerOptions Options { get; }

    /// <summary>The captured step, once graphs are on and the step was captured (null otherwise).</summary>
    public CudaGraph? Graph => _graph;

    // ---- the device-resident step (TrainerOptions.DeviceData) ----------------------------------------
    private DeviceStepState? _state;
    private Tensor? _deviceData, _schedule;
    private long _gBase;
    private int _eagerDeviceSteps;
    private CudaGraph? _graph;
    private CudaBatchStager? _stager;
    private int _slot;
    private const int ScheduleSlack = 64;

    /// <summary>The pinned double-buffered batch path, once started (<see cref="TrainerOptions.PinnedData"/> on CUDA).</summary>
    internal CudaBatchStager? Stager => _stager;

    /// <summary>Test hook: the step does not wait for its batch copy (a deliberately missing wait, which the emulator must expose).</summary>
    internal bool SkipBatchWait { get; set; }

    private void StartDevicePipeline()
    {
        _state = new DeviceStepState(_backend);
        _gBase = Batcher.Consumed;
        if (_backend is CudaBackend cuda)
        {
            if (Options.DeviceData)
                _deviceData = _backend.FromArray(_data.Pixels.AsSpan(0, _data.Count * _data.ImageSize), _data.Count * _data.ImageSize);
            else
            {
                // The first batch is staged here; every step stages the next one after queueing its own work.
                var im = Model.Config.Image;
                _stager = new CudaBatchStager(cuda, [Config.Batch, im.Channels, im.Height, im.Width]);
                _slot = 0;
                long g = Batcher.Consumed;
                _stager.Stage(0, dst => Batcher.HashBatchAt(g, dst));
            }
            if (Optimizer.MultiTensor && Optimizer.Parameters.Count > 0)
            {
                _schedule = _backend.Empty(3 * (Math.Max(1, Config.Steps - Step) + ScheduleSlack));
                FillSchedule(0);
                Optimizer.UseDeviceSchedule(_schedule, _state.Ptr);
            }
            if (Model.Bottleneck is MvqBottleneck mvq) mvq.DeviceStep = _state;
        }
        foreach (var (_, q) in Model.Bottleneck.Quantizers) q.DeferRestarts = true;
    }

    /// <summary>Rows of the AdamW schedule from state T = <paramref name="t"/> on (two uploads: between steps only).</summary>
    private void FillSchedule(long t)
    {
        int rows = _schedule!.Length / 3;
        var host = new float[rows * 3];
        for (int i = 0; i < rows; i++)
        {
            // Row i is the step at T = t + i: trainer step Step + (t + i - T), bias-correction step StepCount + 1 + (t + i - T).
            long ahead = t + i - _state!.T;
            var (size, bc2, decay) = Optimizer.ScheduleRow(LearningRate((int)(Step + ahead)), (int)(Optimizer.StepCount + 1 + ahead));
            host[3 * i] = size; host[3 * i + 1] = bc2; host[3 * i + 2] = decay;
        }
        _schedule.CopyFrom(host);
        _state!.SetScheduleBase(t);
    }

    /// <summary>One step of work with every per-step input made on the device; host mirrors advance once.</summary>
    private void DeviceStepBody()
    {
        var state = _state!;
        if (_stager is not null)
        {
            // Pinned path: this step's batch was staged by the previous step (or the pipeline's start).
            int slot = _slot;
            _stager.SkipDeviceWait = SkipBatchWait;
            var x = _stager.Acquire(slot);
            Batcher.Skip(Config.Batch);
            ComputeStep(LearningRate(Step), x);
            _stager.Release(slot);
            state.Advance();
            // The next batch is assembled on the host while the device runs this step.
            long g = Batcher.Consumed;
            _stager.Stage(1 - slot, dst => Batcher.HashBatchAt(g, dst));
            _slot = 1 - slot;
            return;
        }
        if (_backend is CudaBackend cuda)
        {
            CudaDeviceStep.GatherBatch(cuda, _x, _deviceData!, _data.Count, _data.ImageSize, Config.Batch,
                HashSampler.DeviceSeed(Config.Seed), _gBase, state.Ptr);
            Batcher.Skip(Config.Batch);
        }
        else
        {
            Batcher.NextHashBatch(_host);
            _x.CopyFrom(_host);
        }
        ComputeStep(LearningRate(Step), _x);
        state.Advance();
    }

    /// <summary>Host bookkeeping of a step that ran as a graph replay: what the captured step's host side did once.</summary>
    private void CountReplayedStep()
    {
        _state!.Replayed();
        Batcher.Skip(Config.Batch);
        Optimizer.StepCount++;
        if (Model.Bottleneck is MvqBottleneck mvq) mvq.CountReplayedStep();
        foreach (var (_, q) in Model.Bottleneck.Quantizers) if (q.Training) q.CountReplayedStep();
    }

    private void RunDeviceStep()
    {
        var state = _state!;
        if (_schedule is not null && state.T - state.ScheduleBase >= _schedule.Length / 3) FillSchedule(state.T);
        var cuda = _backend as CudaBackend;
        if (cuda is not null && Options.CudaGraphs && _schedule is not null && _deviceData is not null)
        {
            if (_graph is not null)
            {
                _graph.Launch();
                CountReplayedStep();
            }
            else if (_eagerDeviceSteps >= 2)
            {
                // Shapes, arenas, workspaces, kernels and k-means are settled by two eager steps: capture the third, then run it.
                _graph = cuda.CaptureGraph(DeviceStepBody);
                _graph.Launch();
            }
            else { DeviceStepBody(); _eagerDeviceSteps++; }
        }
        else { DeviceStepBody(); _eagerDeviceSteps++; }
        foreach (var (_, q) in Model.Bottleneck.Quantizers) q.AfterStep();
    }

    public Autoencoder Model { get; }
    public TrainConfig Config { get; }
    public Batcher Batcher { get; }
    public AdamW Optimizer { get; }
    /// <summary>Steps completed so far.</summary>
    public int Step { get; set; }

    public float LearningRate(int step) => LrSchedule.WarmupCosine(step, Config.WarmupSteps, Config.Steps, Config.Lr, Config.MinLr);

    /// <summary>Runs one step; returns figures when the step is a logging step (or <paramref name="forceLog"/>), else null.</summary>
    public StepStats? TrainStep(bool forceLog = false)
    {
        if (!_clock.IsRunning) _clock.Start();
        float lr = LearningRate(Step);
        // Started at the first step, not in the constructor: a resume restores Step, the optimiser and the batcher in between.
        if ((Options.DeviceData || Options.PinnedData) && _state is null) StartDevicePipeline();
        if (_state is not null) RunDeviceStep();
        else
        {
            Batcher.NextBatch(_host);
            _x.CopyFrom(_host);
            ComputeStep(lr, _x);
        }
        Step++;
        _stepsSinceLog++;
        if (!forceLog && Step % Config.LogEvery != 0 && Step != Config.Steps) return null;

        double rec = _rec.Read();
        var terms = new Dictionary<string, double>();
        double total = rec;
        foreach (var (name, t) in Model.Bottleneck.LossTerms)
        {
            double v = t.ToArray()[0];
            terms[name] = v;
            total += v;
        }
        double gn = Optimizer.LastGradNorm;
        if (!double.IsFinite(total)) throw new TrainingDivergedException(Step, "the loss");
        if (!double.IsFinite(gn)) throw new TrainingDivergedException(Step, "the gradient norm");
        ThrowIfDiverged();
        _backend.Synchronize();
        double ms = _clock.Elapsed.TotalMilliseconds / _stepsSinceLog;
        _clock.Restart();
        _stepsSinceLog = 0;
        return new StepStats(Step, total, rec, terms, gn, lr, ms, Config.Batch * 1000.0 / ms);
    }

    /// <summary>Forward, losses, backward, AdamW and the health flag on the batch <paramref name="x"/>.</summary>
    private void ComputeStep(float lr, Tensor x)
    {
        Model.SetTraining(true);
        Optimizer.ZeroGrad();
        var xhat = Model.Forward(x);
        var loss = _rec.Compute(xhat, x);
        Model.Backward(_rec.Grad);
        using (new Section(_backend, Model.Timer, "optimizer")) Optimizer.Step(lr);
        _health.Add(loss);
        foreach (var (_, t) in Model.Bottleneck.LossTerms) _health.Add(t);
        if (Optimizer.GradNormSquared is Tensor gns) _health.Add(gns);
    }

    /// <summary>
    /// True when some step since this trainer started had a non-finite loss term or gradient norm. Reads one device
    /// scalar (a host synchronisation): call it when logging or saving, not every step.
    /// </summary>
    public bool Diverged => _health.Diverged;

    /// <summary>Throws <see cref="TrainingDivergedException"/> when <see cref="Diverged"/>.</summary>
    public void ThrowIfDiverged()
    {
        if (Diverged) throw new TrainingDivergedException(Step, "a loss term or the gradient norm of a recent step");
    }

    /// <summary>Share of step time per section (forward/backward parts, optimiser); needs <see cref="Autoencoder.Timer"/>.</summary>
    public IReadOnlyDictionary<string, double> SectionShares()
    {
        var t = Model.Timer;
        if (t == null) return new Dictionary<string, double>();
        var ms = t.Milliseconds;
        double total = ms.GetValueOrDefault("forward") + ms.GetValueOrDefault("backward") + ms.GetValueOrDefault("optimizer");
        return ms.Where(kv => kv.Key is not ("forward" or "backward")).ToDictionary(kv => kv.Key, kv => total > 0 ? kv.Value / total : 0);
    }

    public void Dispose()
    {
        _x.Dispose();
        _rec.Dispose();
        _health.Dispose();
        _graph?.Dispose();
        _stager?.Dispose();
        _deviceData?.Dispose();
        _schedule?.Dispose();
        _state?.Dispose();
        Optimizer.Dispose();
    }
}
