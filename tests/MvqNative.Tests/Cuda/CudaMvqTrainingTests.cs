// Training steps of the fmnist-mvq-global preset on CUDA (cuda-emu in CI) against the CPU backend:
// with the same weights, data and masks, every step picks the same winning hypotheses.
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Models;
using MvqNative.Mvq;
using MvqNative.Tests.EndToEnd;
using MvqNative.Training;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

public sealed class CudaMvqTrainingTests(ITestOutputHelper output)
{
    private const int Batch = 2, Steps = 2;

    /// <summary>Winners and loss of each training step; masks are the hashed training words of seed 9 (step 0) for every step.</summary>
    private static (int[][] Winners, double[] Loss) Run(Backend b)
    {
        var preset = Presets.Get("fmnist-mvq-global");
        var tc = new TrainConfig { Steps = Steps, Batch = Batch, Lr = 2e-3f, WarmupSteps = 1, LogEvery = 1, Seed = 5 };
        int j = preset.Model.Mvq!.Hypotheses;
        var words = new uint[Batch * j];
        MaskHash.TrainWords(words, 9, 0, preset.Model.Secondary!.CodeDim, preset.Model.Mvq.DropRate);
        using var model = new Autoencoder(b, preset.Model, tc.Seed);
        var mvq = Assert.IsType<MvqBottleneck>(model.Bottleneck);
        mvq.OverrideMasks(words);
        using var trainer = new Trainer(b, model, tc, TrainingTests.Subset(16));
        var winners = new List<int[]>(); var loss = new List<double>();
        while (trainer.Step < tc.Steps)
        {
            loss.Add(trainer.TrainStep(forceLog: true)!.Loss);
            winners.Add(mvq.Winners.ToIntArray());
        }
        return (winners.ToArray(), loss.ToArray());
    }

    [Theory]
    [MemberData(nameof(CudaDeviceTests.Devices), MemberType = typeof(CudaDeviceTests))]
    public void MvqGlobalTrainingStepsPickTheCpuWinners(string device)
    {
        if (device == "none") { Assert.True(TestDevices.EmulatorSkipped, "no CUDA device here: only with the opt-out MVQ_SKIP_EMU=1"); return; }
        var cpu = Run(CpuBackend.Instance);
        var gpu = Run(TestDevices.Get(device));
        for (int s = 0; s < Steps; s++)
        {
            output.WriteLine($"step {s}: cpu winners [{string.Join(',', cpu.Winners[s])}] loss {cpu.Loss[s]:G9} | {device} [{string.Join(',', gpu.Winners[s])}] loss {gpu.Loss[s]:G9}");
            Assert.Equal(cpu.Winners[s], gpu.Winners[s]);
            // Float sums in other orders differ by ~1e-6 relative per op; Adam normalises the updates.
            Assert.Equal(cpu.Loss[s], gpu.Loss[s], Math.Abs(cpu.Loss[s]) * 1e-3);
        }
    }
}
