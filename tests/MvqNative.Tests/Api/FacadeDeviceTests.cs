// FacadeDeviceTests.cs: the facade on every test device (cpu, and cuda-emu, or cuda with MVQ_TEST_CUDA=1): create,
// train a few steps, encode / decode / reconstruct, codes files, save / load, evaluate, and a prior trained, resumed
// and sampled through MvqPrior. Small models, so the emulator runs them in seconds.
using Xunit;

namespace MvqNative.Tests.Api;

public class FacadeDeviceTests
{
    public static TheoryData<string> Devices => new(TestDevices.All);

    private const string Encoder = "\"encoder\": {\"channels\": [8, 16], \"resBlocks\": 1, \"resHidden\": 8}";
    private static readonly string Vq = $"{{\"model\": {{\"kind\": \"vq\", \"head\": \"global\", \"tokens\": 3, \"codes\": 16, \"codeDim\": 8, {Encoder}}}}}";
    private static readonly string Mvq = $"{{\"model\": {{\"kind\": \"mvq\", \"head\": \"global\", \"tokens\": 2, \"codes\": 16, \"codeDim\": 8, {Encoder}, " +
        "\"secondary\": {\"tokens\": 2, \"codeDim\": 8, \"codes\": 16}, \"mvq\": {\"hypotheses\": 16, \"evalHypotheses\": 32, \"fHidden\": 16, \"chunk\": 8}}}";

    private static MvqImages Data(int n = 40) => MvqImages.Load("fashion-mnist:test", 1, 28, 28, limit: n);

    private static MvqModel Trained(string json, string device)
    {
        var m = MvqModel.Create(MvqRecipe.FromJson(json), device, seed: 5);
        var reports = new List<MvqTrainProgress>();
        var r = m.Train(Data(), new MvqTrainOptions { Steps = 3, Batch = 8, LogEvery = 1 }, new Sync<MvqTrainProgress>(reports.Add));
        Assert.Equal(3, r.Step);
        Assert.Equal([1, 2, 3], reports.Select(p => p.Step));
        Assert.All(reports, p => Assert.True(double.IsFinite(p.Loss)));
        return m;
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void Train_encode_decode_save_load_and_evaluate(string device)
    {
        using var dir = new TempDir();
        using var m = Trained(Vq, device);
        Assert.Equal(device, m.DeviceKind);
        var x = Data(70).Pixels.ToArray();
        var codes = m.Encode(x);
        Assert.Equal(70, codes.Count);
        var rec = m.Reconstruct(x);
        // Decoding the codes reproduces the evaluation-mode reconstruction exactly, on this device.
        Assert.Equal(rec, m.Decode(codes));
        // A batch of 70 in one pass: the same codes as 64 + 6.
        Assert.Equal(codes.Values, m.Encode(x, batch: 70).Values);
        // Codes files round-trip, with their sources.
        new MvqCodes(codes.Values, codes.Segments) { Sources = Enumerable.Range(0, 70).Select(i => $"img{i}").ToArray() }.Save(dir.File("codes.json"), m);
        var back = MvqCodes.Load(dir.File("codes.json"), m);
        Assert.Equal(codes.Values, back.Values);
        Assert.Equal("img69", back.Sources![69]);
        // Save and load on the same device give the same codes and reconstructions.
        m.Save(dir.File("m.safetensors"));
        using (var loaded = MvqModel.Load(dir.File("m.safetensors"), device))
        {
            Assert.Equal(codes.Values, loaded.Encode(x).Values);
            Assert.Equal(rec, loaded.Reconstruct(x));
        }
        var ev = m.Evaluate(Data(70), new MvqEvalOptions { Features = false, Batch = 32 });
        Assert.Equal(70, ev.Images);
        Assert.True(ev.Mse > 0 && double.IsFinite(ev.Psnr) && ev.Ssim is > -1 and <= 1);
        Assert.Equal(3, ev.TokensPerInstance);
        Assert.Equal(3 * 4.0, ev.BitsPerInstance, 9);
        Assert.Null(ev.Distribution);
        Assert.Equal("not asked for", ev.FeatureMetricsSkipped);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void Mvq_masks_decode_as_the_evaluation_bank_says(string device)
    {
        using var m = Trained(Mvq, device);
        Assert.InRange(m.MaskBits, 1, 31);
        uint max = (1u << m.MaskBits) - 1;
        var x = Data(5).Pixels.ToArray();
        var codes = m.Encode(x);
        // Decoding with each code's own bank word as an explicit mask word is decoding the code.
        var words = Enumerable.Range(0, codes.Count).Select(i => m.EvaluationMask(codes[i][codes.Length - 1])).ToArray();
        Assert.Equal(m.Decode(codes), m.Decode(new MvqCodes(codes.Values, codes.Segments, words)));
        Assert.Equal(m.RandomMasks(6, seed: 2), m.RandomMasks(6, seed: 2));
        Assert.All(m.RandomMasks(6, seed: 2), w => Assert.InRange(w, 0u, max));
        Assert.Throws<InvalidOperationException>(() => { using var vq = MvqModel.Create(MvqRecipe.FromJson(Vq), device); vq.EvaluationMask(0); });
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void A_prior_trains_resumes_and_samples(string device)
    {
        using var dir = new TempDir();
        using var m = Trained(Vq, device);
        var codes = m.Encode(Data(64).Pixels, batch: 32);
        var options = new MvqPriorOptions { Layers = 1, Heads = 2, Width = 16, Steps = 6, Batch = 8, LogEvery = 2, CheckpointEvery = 3, CheckpointPath = dir.File("prior.safetensors") };
        // Straight to step 6, against 3 steps, a resume from the step-3 checkpoint, then 3 more.
        MvqPriorProgress? last = null;
        using (var p = MvqPrior.Create(m, options))
        {
            var r = p.Train(codes, new Sync<MvqPriorProgress>(x => last = x));
            Assert.Equal(6, r.Step);
            Assert.Equal(6, r.StepsRun);
        }
        Assert.Equal(6, last!.Step);
        using (var p3 = MvqPrior.Create(m, new MvqPriorOptions { Layers = 1, Heads = 2, Width = 16, Steps = 6, Batch = 8, LogEvery = 1, CheckpointEvery = 3, CheckpointPath = dir.File("p3.safetensors") }))
        {
            // Cancel after step 3 (the checkpoint there is written before the token is looked at again).
            using var cts = new CancellationTokenSource();
            var progress = new Sync<MvqPriorProgress>(x => { if (x.Step == 3) cts.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => p3.Train(codes, progress, cts.Token));
            Assert.Equal(3, p3.Step);
        }
        MvqPriorProgress? resumedLast = null;
        using (var resumed = MvqPrior.Resume(dir.File("p3.safetensors"), m, new MvqPriorOptions { Steps = 6, Batch = 8, CheckpointPath = dir.File("p6.safetensors") }))
        {
            Assert.Equal(3, resumed.Step);
            var r = resumed.Train(codes, new Sync<MvqPriorProgress>(x => resumedLast = x));
            Assert.Equal(3, r.StepsRun);
        }
        Assert.Equal(last.Loss, resumedLast!.Loss);
        using var prior = MvqPrior.Load(dir.File("prior.safetensors"), m);
        using (var p6 = MvqPrior.Load(dir.File("p6.safetensors"), m))
            Assert.Equal(prior.Sample(8, new MvqSampleOptions(Seed: 9)).Codes.Values, p6.Sample(8, new MvqSampleOptions(Seed: 9)).Codes.Values);
        var ev = prior.Evaluate(codes, codes);
        Assert.True(ev.NatsPerToken > 0 && double.IsFinite(ev.BitsPerImage));
        var s = prior.Sample(5, new MvqSampleOptions(Seed: 4, Batch: 2));
        Assert.Equal(5, s.Codes.Count);
        Assert.Equal(s.Images, m.Decode(s.Codes));
        Assert.Equal(s.Codes.Values, prior.Sample(5, new MvqSampleOptions(Seed: 4, Batch: 5)).Codes.Values);
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class Sync<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
