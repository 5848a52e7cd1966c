// The optimiser and a short training run on CUDA (cuda-emu in CI) against the CPU backend.
using MvqNative.Backends;
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Layers;
using MvqNative.Models;
using MvqNative.Optim;
using MvqNative.Training;
using MvqNative.Tests.EndToEnd;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

public sealed class CudaTrainingTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Devices() => CudaDeviceTests.Devices();

    private CudaBackend? Open(string device) => TestDevices.OpenCuda(device, output);

    // Sizes: one tensor spans three chunks of the multi-tensor kernels (4096 elements each, tail 808),
    // the others are small, odd, a decay-free bias and a frozen tensor that must not move.
    private static readonly (string Name, int Size, bool Decay, bool Trainable)[] Specs =
        [("w0", 9000, true, true), ("b0", 7, false, true), ("w1", 1, true, true), ("frozen", 33, true, false), ("w2", 4096, true, true)];

    /// <summary>Runs <paramref name="steps"/> AdamW steps with seeded gradients; returns the final parameters, moments and grad norms.</summary>
    private static (float[][] P, float[][] M, float[][] V, float[] Norms) RunAdamW(Backend b, bool multi, int steps)
    {
        var rng = new Random(17);
        var ps = Specs.Select(s => new Parameter(s.Name, b.FromArray(Enumerable.Range(0, s.Size).Select(_ => (float)rng.NextDouble() * 2 - 1).ToArray(), s.Size), s.Decay, s.Trainable)).ToList();
        try
        {
            using var opt = new AdamW(ps, lr: 1e-2f, weightDecay: 0.1f, clipNorm: 5f) { MultiTensor = multi };
            var norms = new float[steps];
            for (int t = 0; t < steps; t++)
            {
                // Step 0 has a norm far above the clip (scale 1 on ~13k elements), the last one below it.
                float scale = t == steps - 1 ? 0.01f : 1f;
                foreach (var p in ps) p.Grad.CopyFrom(Enumerable.Range(0, p.Grad.Length).Select(_ => ((float)rng.NextDouble() * 2 - 1) * scale).ToArray());
                opt.Step(1e-2f * (t + 1));
                norms[t] = opt.LastGradNorm;
            }
            var state = opt.State.ToList();
            return (ps.Select(p => p.Value.ToArray()).ToArray(), state.Select(s => s.M.ToArray()).ToArray(), state.Select(s => s.V.ToArray()).ToArray(), norms);
        }
        finally { foreach (var p in ps) p.Dispose(); }
    }

    private static void Close(float[][] want, float[][] got, double rel, string what)
    {
        Assert.Equal(want.Length, got.Length);
        for (int k = 0; k < want.Length; k++)
            for (int i = 0; i < want[k].Length; i++)
                Assert.True(Math.Abs(want[k][i] - got[k][i]) <= rel * Math.Max(1e-3, Math.Abs(want[k][i])),
                    $"{what}[{k}][{i}]: cpu {want[k][i]}, cuda {got[k][i]}");
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void MultiTensorAdamWMatchesCpuAndPerParameterPath(string device)
    {
        if (Open(device) is not { } cuda) return;
        var cpu = RunAdamW(CpuBackend.Instance, multi: false, steps: 3);
        var fused = RunAdamW(cuda, multi: true, steps: 3);
        var perParam = RunAdamW(cuda, multi: false, steps: 3);
        // The norm is summed in float in another order than the CPU's double sum: 1e-5 relative.
        for (int t = 0; t < 3; t++)
        {
            Assert.Equal(cpu.Norms[t], fused.Norms[t], cpu.Norms[t] * 1e-5);
            Assert.Equal(cpu.Norms[t], perParam.Norms[t], cpu.Norms[t] * 1e-5);
        }
        Assert.True(cpu.Norms[0] > 5f && cpu.Norms[2] < 5f, "step 1 must clip, step 3 must not");
        // Adam normalises by sqrt(v): a 1e-6 relative difference in the clip factor moves the
        // update by about that much; 2e-5 relative (1e-3 floor) covers 3 steps of float rounding.
        Close(cpu.P, fused.P, 2e-5, "param"); Close(cpu.M, fused.M, 2e-5, "m"); Close(cpu.V, fused.V, 2e-5, "v");
        Close(cpu.P, perParam.P, 2e-5, "param"); Close(cpu.M, perParam.M, 2e-5, "m"); Close(cpu.V, perParam.V, 2e-5, "v");
        Assert.Equal(RunAdamW(CpuBackend.Instance, false, 1).P[3], fused.P[3]); // frozen: untouched
        // The fused path is deterministic: a second run is bit-identical.
        var again = RunAdamW(cuda, multi: true, steps: 3);
        Assert.Equal(fused.Norms, again.Norms);
        for (int k = 0; k < fused.P.Length; k++) Assert.Equal(fused.P[k], again.P[k]);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void ThreeTrainingStepsMatchTheCpuRun(string device)
    {
        if (Open(device) is not { } cuda) return;
        var data = TrainingTests.Subset(32);
        var tc = new TrainConfig { Steps = 3, Batch = 8, Lr = 2e-3f, WarmupSteps = 1, LogEvery = 1, Seed = 5 };
        List<StepStats> Run(Backend b)
        {
            using var model = new Autoencoder(b, TrainingTests.SmallVq(), tc.Seed);
            using var trainer = new Trainer(b, model, tc, data);
            Assert.All(model.Parameters(), p => Assert.Same(b, p.Value.Backend));
            var stats = new List<StepStats>();
            while (trainer.Step < tc.Steps) stats.Add(trainer.TrainStep(forceLog: true)!);
            return stats;
        }
        var cpu = Run(CpuBackend.Instance);
        var gpu = Run(cuda);
        Assert.Equal(cpu.Count, gpu.Count);
        for (int i = 0; i < cpu.Count; i++)
        {
            output.WriteLine($"step {cpu[i].Step}: cpu loss {cpu[i].Loss:G17} rec {cpu[i].Reconstruction:G17} | {device} loss {gpu[i].Loss:G17} rec {gpu[i].Reconstruction:G17}");
            // Float sums in other orders (cuBLAS, block trees) differ from the CPU's by ~1e-6 relative per
            // op; after 3 steps of Adam (which normalises updates) the losses agree to 1e-3 relative.
            Assert.Equal(cpu[i].Loss, gpu[i].Loss, Math.Abs(cpu[i].Loss) * 1e-3);
            Assert.Equal(cpu[i].Reconstruction, gpu[i].Reconstruction, Math.Abs(cpu[i].Reconstruction) * 1e-3);
        }
    }
}
