using System.Diagnostics;
using MvqNative.Backends;
using MvqNative.Data;
using MvqNative.Models;
using MvqNative.Training;

namespace MvqNative.Benchmarks;

/// <summary>
/// Result of timing training steps: per-step times, the median, and what the runtime did during the
/// timed steps: garbage collections per generation, GC pause time, bytes allocated per step and
/// the steps during which a collection ran (to tell GC pauses from other causes of slow steps).
/// </summary>
internal sealed record TrainBenchResult(int Steps, double MedianMs, double ImagesPerSecond, IReadOnlyList<double> StepMs, IReadOnlyDictionary<string, double> Sections,
    double MeanMs = 0, int[]? Collections = null, double GcPauseMs = 0, double AllocatedBytesPerStep = 0, IReadOnlyList<int>? StepsWithGc = null,
    StepCounts? Counts = null, OpTimes? Ops = null, double CpuMsPerStep = 0);

/// <summary>
/// Wall time per op name per step (CPU: ops run synchronously), from extra steps run after the timed ones with
/// <see cref="Ops.OpTiming"/> on; StepMs is the mean step over those steps, so StepMs minus the ops' sum is the time
/// spent outside ops (layer glue, arena, the trainer).
/// </summary>
internal sealed record OpTimes(int Steps, double StepMs, IReadOnlyList<(string Op, double MsPerStep, double CallsPerStep, double MinMs)> Rows);

/// <summary>
/// Driver work per timed training step on a CUDA backend (counted in the managed backend around each
/// TrainStep call, so the bench's own synchronisation after the step is not included): the mean and the
/// largest count of any step, and the kernels the emulator actually ran per step (graph replays included).
/// </summary>
internal sealed record StepCounts(IReadOnlyDictionary<string, double> Mean, IReadOnlyDictionary<string, long> Max, double? EmulatorLaunchesPerStep,
    long GraphNodes, bool DeviceData, bool CudaGraphs, bool Tf32);

/// <summary>Times full training steps of a preset on synthetic images (uniform noise in [0, 1]).</summary>
internal static class TrainBench
{
    public static TrainBenchResult Run(Backend backend, Preset preset, int steps, int warmup, TrainerOptions? options = null, int opTimeSteps = 0)
    {
        var im = preset.Model.Image;
        int n = Math.Max(preset.Train.Batch * 4, 256);
        var rng = new Random(1);
        var pixels = new float[n * im.Channels * im.Height * im.Width];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)rng.NextDouble();
        var data = new ImageDataset("synthetic", n, im.Channels, im.Height, im.Width, pixels);
        var tc = preset.Train;
        tc.Steps = warmup + steps + 4;
        tc.LogEvery = int.MaxValue;
        tc.CheckpointEvery = 0;
        using var model = new Autoencoder(backend, preset.Model, tc.Seed);
        using var trainer = new Trainer(backend, model, tc, data, options);
        var cuda = backend as Backends.Cuda.CudaBackend;
        // The step is captured at the third trainer step: keep the capture (and cuBLAS's workspace allocation) out of the timed steps.
        if (cuda is not null && trainer.Options is { DeviceData: true, CudaGraphs: true }) warmup = Math.Max(warmup, 3);
        for (int i = 0; i < warmup; i++) trainer.TrainStep();
        backend.Synchronize();
        var times = new List<double>();
        var gcSteps = new List<int>();
        int[] gc0 = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var pause0 = GC.GetTotalPauseDuration();
        long alloc0 = GC.GetTotalAllocatedBytes(false);
        var perStep = new List<Backends.Cuda.CudaCounts>();
        ulong emu0 = Bindings.MvqEmu.Launches();
        // CPU time of the whole process over the timed steps (all threads): on a loaded machine it counts the work, not the waiting.
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        for (int i = 0; i < steps; i++)
        {
            int c0 = GC.CollectionCount(0);
            var before = cuda?.Counters.Snapshot();
            var sw = Stopwatch.StartNew();
            trainer.TrainStep();
            if (cuda is not null) perStep.Add(cuda.Counters.Snapshot() - before!.Value);
            backend.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
            if (GC.CollectionCount(0) != c0) gcSteps.Add(i);
        }
        ulong emu1 = Bindings.MvqEmu.Launches();
        double cpuMs = steps > 0 ? (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / steps : 0;
        StepCounts? counts = null;
        if (cuda is not null && perStep.Count > 0)
        {
            var names = perStep[0].Fields().Select(f => f.Name).ToArray();
            var mean = new Dictionary<string, double>();
            var max = new Dictionary<string, long>();
            for (int f = 0; f < names.Length; f++)
            {
                var values = perStep.Select(c => c.Fields().ElementAt(f).Value).ToList();
                mean[names[f]] = values.Average();
                max[names[f]] = values.Max();
            }
            var o = trainer.Options;
            counts = new StepCounts(mean, max, cuda.IsEmulator ? (emu1 - emu0) / (double)perStep.Count : null, trainer.Graph?.Nodes ?? 0,
                o.DeviceData, o.CudaGraphs && trainer.Graph is not null, cuda.Tf32);
        }
        int[] collections = [GC.CollectionCount(0) - gc0[0], GC.CollectionCount(1) - gc0[1], GC.CollectionCount(2) - gc0[2]];
        double pauseMs = (GC.GetTotalPauseDuration() - pause0).TotalMilliseconds;
        double allocPerStep = steps > 0 ? (GC.GetTotalAllocatedBytes(false) - alloc0) / (double)steps : 0;
        // Section shares come from extra synchronised steps so that the timed steps stay clean.
        // A replayed graph has no sections (and a timer's synchronisation would break a capture): eager runs only.
        bool graphs = cuda is not null && trainer.Options.DeviceData && trainer.Options.CudaGraphs;
        if (!graphs)
        {
            model.Timer = new SectionTimer();
            for (int i = 0; i < Math.Min(3, steps); i++) trainer.TrainStep();
        }
        OpTimes? ops = null;
        if (opTimeSteps > 0)
        {
            var sw = Stopwatch.StartNew();
            Ops.OpTiming.Start();
            for (int i = 0; i < opTimeSteps; i++) trainer.TrainStep();
            backend.Synchronize();
            var rows = Ops.OpTiming.Stop();
            ops = new OpTimes(opTimeSteps, sw.Elapsed.TotalMilliseconds / opTimeSteps,
                rows.Select(r => (r.Op, r.Ms / opTimeSteps, r.Calls / (double)opTimeSteps, r.MinMs)).ToList());
        }
        var sorted = times.OrderBy(t => t).ToList();
        double med = sorted[sorted.Count / 2];
        return new TrainBenchResult(steps, med, tc.Batch * 1000.0 / med, times, trainer.SectionShares(),
            times.Count > 0 ? times.Average() : 0, collections, pauseMs, allocPerStep, gcSteps, counts, ops, cpuMs);
    }
}
