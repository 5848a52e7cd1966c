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
    double MeanMs = 0, int[]? Collections = null, double GcPauseMs = 0, double AllocatedBytesPerStep = 0, IReadOnlyList<int>? StepsWithGc = null);

/// <summary>Times full training steps of a preset on synthetic images (uniform noise in [0, 1]).</summary>
internal static class TrainBench
{
    public static TrainBenchResult Run(Backend backend, Preset preset, int steps, int warmup)
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
        using var trainer = new Trainer(backend, model, tc, data);
        for (int i = 0; i < warmup; i++) trainer.TrainStep();
        backend.Synchronize();
        var times = new List<double>();
        var gcSteps = new List<int>();
        int[] gc0 = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var pause0 = GC.GetTotalPauseDuration();
        long alloc0 = GC.GetTotalAllocatedBytes(false);
        for (int i = 0; i < steps; i++)
        {
            int c0 = GC.CollectionCount(0);
            var sw = Stopwatch.StartNew();
            trainer.TrainStep();
            backend.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
            if (GC.CollectionCount(0) != c0) gcSteps.Add(i);
        }
        int[] collections = [GC.CollectionCount(0) - gc0[0], GC.CollectionCount(1) - gc0[1], GC.CollectionCount(2) - gc0[2]];
        double pauseMs = (GC.GetTotalPauseDuration() - pause0).TotalMilliseconds;
        double allocPerStep = steps > 0 ? (GC.GetTotalAllocatedBytes(false) - alloc0) / (double)steps : 0;
        // Section shares come from extra synchronised steps so that the timed steps stay clean.
        model.Timer = new SectionTimer();
        for (int i = 0; i < Math.Min(3, steps); i++) trainer.TrainStep();
        var sorted = times.OrderBy(t => t).ToList();
        double med = sorted[sorted.Count / 2];
        return new TrainBenchResult(steps, med, tc.Batch * 1000.0 / med, times, trainer.SectionShares(),
            times.Count > 0 ? times.Average() : 0, collections, pauseMs, allocPerStep, gcSteps);
    }
}
