// Issue 15 for the prior: one decoding step of the sampler on CUDA with every per-position value on the device
// (position, input tokens, image counter), the next token drawn on the device, captured once as a CUDA graph and
// replayed per position. On cuda-emu the replayed run equals the eager run bit for bit (codes and logits), a
// replayed step asks nothing of the host, and a position frozen into the graph is caught.
using MvqNative.Backends.Cpu;
using MvqNative.Backends.Cuda;
using MvqNative.Prior;
using MvqNative.Tests.Prior;
using Xunit;
using Xunit.Abstractions;

namespace MvqNative.Tests.Cuda;

public sealed class PriorSamplingGraphTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Devices() => CudaDeviceTests.Devices();

    private static readonly CodeLayout Vq = new([new("k", 0, 6, 9)]);
    private static readonly CodeLayout Mvq = new([new("k1", 0, 2, 5), new("k2", 2, 3, 4), new("w", 5, 1, 7)]);
    private static PriorConfig Small => new() { Layers = 2, Heads = 2, Width = 16 };

    private CudaBackend? Open(string device) => TestDevices.OpenCuda(device, output, own: true);

    private static int[] Bits(float[] a) => a.Select(BitConverter.SingleToInt32Bits).ToArray();

    public static IEnumerable<object[]> Cases()
    {
        foreach (var d in Devices())
            foreach (var mvq in new[] { false, true })
                foreach (var filtered in new[] { false, true })
                    yield return [d[0], mvq, filtered];
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GraphReplayedSamplingEqualsEagerBitForBit(string device, bool mvq, bool filtered)
    {
        using var b = Open(device);
        if (b is null) return;
        var layout = mvq ? Mvq : Vq;
        var opt = filtered ? new SamplingOptions(Temperature: 0.8f, TopK: 4, TopP: 0.9f, Seed: 5) : new SamplingOptions(Temperature: 1.5f, Seed: 4);
        using var prior = new TransformerPrior(b, Small, layout, seed: 3);
        using var eager = new PriorSampler(prior, cudaGraphs: false);
        using var graph = new PriorSampler(prior, cudaGraphs: true);
        var ce = eager.Sample(7, 4, opt); var le = eager.LastDeviceLogits();
        var cg = graph.Sample(7, 4, opt); var lg = graph.LastDeviceLogits();
        Assert.Equal(ce, cg);
        Assert.Equal(Bits(le), Bits(lg));
        for (int n = 0; n < cg.Length; n++)
        {
            var (lo, hi) = layout.Bounds(n % layout.Length);
            Assert.InRange(cg[n], 0, hi - lo - 1);
        }
        Assert.True(graph.GraphNodes > 0);

        // A replayed step: one graph launch and nothing else from the host (no launch, sync, copy or allocation).
        var s = graph.StepCounts;
        int steps = graph.CountedSteps;
        Assert.Equal(2 * (layout.Length - 1), steps);   // two batches (4 + 3), steps 1..T-1 of each
        Assert.Equal(steps, s.GraphLaunches);
        Assert.Equal(0, s.KernelLaunches + s.BlasCalls + s.Memsets);
        Assert.Equal(0, s.Syncs + s.CopiesHtoD + s.CopiesDtoH + s.CopiesDtoD);
        Assert.Equal(0, s.DeviceAllocs + s.PinnedAllocs + s.Frees);
        // The eager device step has no sync or copy either; only the codes come back, once per batch.
        var e = eager.StepCounts;
        Assert.Equal(0, e.Syncs + e.CopiesHtoD + e.CopiesDtoH + e.DeviceAllocs + e.GraphLaunches);
        Assert.True(e.KernelLaunches > 0);
        Assert.Equal(2, graph.RunCounts.CopiesDtoH);

        // The same seed gives the same codes again (the graph is reused); another seed gives other codes.
        Assert.Equal(cg, graph.Sample(7, 4, opt));
        Assert.NotEqual(cg, graph.Sample(7, 4, opt with { Seed = opt.Seed + 1 }));
        // The draw's counter is (seed, image, position): the batching does not change an image's codes on the emulator.
        if (device == "cuda-emu") Assert.Equal(cg, graph.Sample(7, 7, opt));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void APositionFrozenIntoTheGraphIsCaught(string device)
    {
        using var b = Open(device);
        if (b is null) return;
        using var prior = new TransformerPrior(b, Small, Mvq, seed: 3);
        using var eager = new PriorSampler(prior, cudaGraphs: false);
        using var broken = new PriorSampler(prior, cudaGraphs: true) { BreakGraphFreezePosition = true };
        var opt = new SamplingOptions(Temperature: 1.5f, Seed: 4);
        var ce = eager.Sample(5, 5, opt); var le = eager.LastDeviceLogits();
        var cb = broken.Sample(5, 5, opt); var lb = broken.LastDeviceLogits();
        // Every replay decodes position 1 again: the later positions' codes and the last logits differ.
        Assert.NotEqual(Bits(le), Bits(lb));
        Assert.NotEqual(ce, cb);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void GreedyDrawsOnTheDeviceEqualTheCpuSampler(string device)
    {
        using var b = Open(device);
        if (b is null) return;
        using var gpu = new TransformerPrior(b, Small, Mvq, seed: 6);
        using var cpu = new TransformerPrior(CpuBackend.Instance, Small, Mvq, seed: 6);
        // Larger weights than the default init so that the argmax depends on the prefix (as PriorTests' greedy test).
        foreach (var (pg, pc) in gpu.Parameters().Zip(cpu.Parameters()))
        {
            var w = pc.Value.ToArray().Select(v => pc.Decay ? v * 20 : v).ToArray();
            pc.Value.CopyFrom(w); pg.Value.CopyFrom(w);
        }
        using var sg = new PriorSampler(gpu);
        using var sc = new PriorSampler(cpu);
        var opt = new SamplingOptions(TopK: 1, Seed: 2);
        Assert.Equal(sc.Sample(9, 4, opt), sg.Sample(9, 4, opt));
    }
    /// <summary>
    /// The draw kernel against its host twin (PriorSampler.DrawDevice: the CPU rule with the device's uniform number),
    /// over positions of three segments, with and without top-k / top-p, on logits with ties (ties go to the lower index).
    /// </summary>
    [Theory]
    [MemberData(nameof(Devices))]
    public void TheDrawKernelEqualsItsHostTwin(string device)
    {
        using var b = Open(device);
        if (b is null) return;
        var layout = Mvq;
        int batch = 37, vocab = layout.Vocabulary, tmax = layout.Length;
        var rng = new Random(11);
        // Coarse logits (multiples of 0.25 in [-2, 2]) so that many entries tie.
        var host = Enumerable.Range(0, batch * vocab).Select(_ => rng.Next(-8, 9) * 0.25f).ToArray();
        using var logits = b.FromArray(host, batch, vocab);
        using var work = b.Zeros(batch, 2 * vocab);
        using var codes = b.FromArray(new int[batch * tmax], batch, tmax);
        using var ids = b.FromArray(new int[batch], batch);
        using var pos = b.FromArray(new int[1], 1);
        var hb = new int[2 * tmax];
        for (int t = 0; t < tmax; t++) (hb[2 * t], hb[2 * t + 1]) = layout.Bounds(t);
        using var bounds = b.FromArray(hb, tmax, 2);
        using var imageBase = b.FromArray(new int[2], 2);
        const long Base = 1000;
        b.Upload(imageBase.Buffer, imageBase.Offset, (ReadOnlySpan<long>)[Base]);
        var probs = new float[vocab]; var order = new int[vocab];
        int agree = 0, total = 0;
        foreach (var opt in new[] { new SamplingOptions(Seed: 3), new SamplingOptions(Temperature: 0.7f, TopK: 3, Seed: 4), new SamplingOptions(Temperature: 2f, TopP: 0.6f, Seed: 5), new SamplingOptions(TopK: 5, TopP: 0.8f, Seed: 6) })
        {
            for (int t = 0; t < tmax; t++)
            {
                pos.CopyFrom([t]);
                MvqNative.Backends.Cuda.Kernels.CudaPriorSample.Draw(b, codes, ids, logits, work, pos, bounds, imageBase, opt.Temperature, opt.TopK, opt.TopP, MvqNative.Mvq.MaskHash.Seed(opt.Seed));
                var got = codes.ToIntArray(); var gotIds = ids.ToIntArray();
                var (lo, hi) = layout.Bounds(t);
                for (int i = 0; i < batch; i++)
                {
                    int want = PriorSampler.DrawDevice(host.AsSpan(i * vocab + lo, hi - lo), opt, Base + i, t, probs, order);
                    total++;
                    if (got[i * tmax + t] == want) agree++;
                    else output.WriteLine($"{opt} t={t} image {i}: device {got[i * tmax + t]}, host {want}");
                    Assert.Equal(lo + got[i * tmax + t], gotIds[i]);
                }
            }
        }
        // The emulator runs the kernel's expf on the host's libm, as .NET's MathF.Exp does: every draw agrees. A GPU's
        // expf may differ in the last bits, which can move a draw that sits on a boundary: nearly all agree there.
        if (device == "cuda-emu") Assert.Equal(total, agree);
        else Assert.True(agree >= total * 0.98, $"{agree} of {total} draws agree");
    }
}
