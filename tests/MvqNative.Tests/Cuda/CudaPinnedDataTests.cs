// Issue 15, the other half of data placement: a dataset kept on the host is staged through two pinned host
// buffers with async copies on a second stream and event waits on the device. On cuda-emu: it trains bit for bit
// like the device-data path, a step issues no synchronisation and one async copy, and a deliberately removed
// wait is caught (the emulator runs a pinned copy only when something orders it).
using MvqNative.Backends.Cuda;
using MvqNative.Bindings;
using MvqNative.Models;
using MvqNative.Tests.EndToEnd;
using MvqNative.Training;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

public sealed class CudaPinnedDataTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Devices() => CudaDeviceTests.Devices();

    private CudaBackend? Open(string device) => TestDevices.OpenCuda(device, output, own: true);

    private sealed record Run(double[] Loss, float[][] Params, float[][] Moments, CudaCounts Step);

    /// <param name="skipWaitFrom">From this step on, the step does not wait for its batch copy (-1: never).</param>
    private static Run Train(CudaBackend b, string presetName, TrainerOptions options, int steps, int batch, int skipWaitFrom = -1)
    {
        var preset = Presets.Get(presetName);
        preset.Model.Quantizer.RestartEvery = 4;
        var tc = new TrainConfig { Steps = steps, Batch = batch, Lr = 2e-3f, WarmupSteps = 2, LogEvery = 1000, Seed = 5 };
        using var model = new Autoencoder(b, preset.Model, tc.Seed);
        using var trainer = new Trainer(b, model, tc, TrainingTests.Subset(24), options);
        var loss = new List<double>();
        CudaCounts counted = default;
        while (trainer.Step < tc.Steps)
        {
            trainer.SkipBatchWait = skipWaitFrom >= 0 && trainer.Step >= skipWaitFrom;
            bool count = trainer.Step == tc.Steps - 2;
            var before = b.Counters.Snapshot();
            // Every other step reads the loss (a sync between steps); the counted one runs as it would between logs.
            var s = trainer.TrainStep(forceLog: !count);
            if (count) counted = b.Counters.Snapshot() - before;
            if (s is not null) loss.Add(s.Loss);
        }
        return new Run([.. loss], model.Parameters().Select(p => p.Value.ToArray()).ToArray(),
            trainer.Optimizer.State.SelectMany(t => new[] { t.M.ToArray(), t.V.ToArray() }).ToArray(), counted);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void PinnedBatchesTrainLikeDeviceDataBitForBit(string device)
    {
        using var b = Open(device);
        if (b is null) return;
        foreach (var (preset, batch) in new[] { ("fmnist-vq", 4), ("fmnist-mvq-global", 2) })
        {
            const int steps = 6; // 24 images, batch 4: an epoch boundary, and a dead-code restart at step 4
            var onDevice = Train(b, preset, new TrainerOptions(DeviceData: true, CudaGraphs: false), steps, batch);
            var pinned = Train(b, preset, new TrainerOptions(PinnedData: true), steps, batch);
            output.WriteLine($"{preset}: losses device [{string.Join(", ", onDevice.Loss.Select(x => x.ToString("G9")))}] pinned [{string.Join(", ", pinned.Loss.Select(x => x.ToString("G9")))}]");
            Assert.Equal(onDevice.Loss, pinned.Loss);
            for (int i = 0; i < onDevice.Params.Length; i++) Assert.Equal(onDevice.Params[i], pinned.Params[i]);
            for (int i = 0; i < onDevice.Moments.Length; i++) Assert.Equal(onDevice.Moments[i], pinned.Moments[i]);
            Assert.NotEqual(pinned.Loss[0], pinned.Loss[^1]);
            var c = pinned.Step;
            output.WriteLine($"{preset}: a pinned-path step: {string.Join(", ", c.Fields().Select(f => $"{f.Name} {f.Value}"))}");
            Assert.Equal(1, c.CopiesHtoDAsync);
            Assert.Equal(0, c.CopiesHtoD);
            Assert.Equal(0, c.CopiesDtoH);
            Assert.Equal(0, c.Syncs);
            Assert.Equal(0, c.DeviceAllocs);
            Assert.Equal(0, c.PinnedAllocs);
        }
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void AMissingWaitForTheBatchCopyIsCaught(string device)
    {
        // Only the emulator defers the copy until something orders it; on a GPU it is a race that may go either way.
        if (device != "cuda-emu") return;
        using var b = Open(device);
        if (b is null) return;
        const int steps = 8;
        var good = Train(b, "fmnist-vq", new TrainerOptions(PinnedData: true), steps, 4);
        // From step 3 on the step reads its device buffer before the copy ran: it trains on the batch of two steps before.
        var stale = Train(b, "fmnist-vq", new TrainerOptions(PinnedData: true), steps, 4, skipWaitFrom: 3);
        output.WriteLine($"losses with the wait [{string.Join(", ", good.Loss.Select(x => x.ToString("G9")))}], without it from step 3 [{string.Join(", ", stale.Loss.Select(x => x.ToString("G9")))}]");
        Assert.Equal(good.Loss[..3], stale.Loss[..3]);
        // Which unwaited step first reads a stale buffer is not fixed: the next batch is staged on another thread, and
        // its event query or wait on the copy stream can order the pending copy before the step reads it (one CI run
        // saw step 3 intact and step 4 stale). The missing wait must show within the 5 unwaited steps.
        Assert.NotEqual(good.Loss[3..], stale.Loss[3..]);
        // Without the wait from the first step the device buffer was never written: initcheck stops the first reader.
        if ((MvqEmu.Checkers() ?? "").Contains("initcheck"))
        {
            var e = Assert.ThrowsAny<CudaException>(() => Train(b, "fmnist-vq", new TrainerOptions(PinnedData: true), 2, 4, skipWaitFrom: 0));
            output.WriteLine(e.Message);
            Assert.Contains("initcheck", e.Message);
        }
    }
}
