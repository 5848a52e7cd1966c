// FacadeTests.cs: the public facade (MvqModel, MvqRecipe, MvqImages, MvqCodes) on the CPU: train, encode, decode,
// reconstruct, evaluate, save/load, its threading rule and its argument checks.
using MvqNative.Training;
using Xunit;

namespace MvqNative.Tests.Api;

public class FacadeTests
{
    private static MvqImages Data(int n = 96) => MvqImages.Load("fashion-mnist:test", 1, 28, 28, limit: n);

    private static MvqModel Trained(string preset = "fmnist-vq", int steps = 6)
    {
        var m = MvqModel.Create(MvqRecipe.Preset(preset), "cpu", seed: 3);
        m.Train(Data(), new MvqTrainOptions { Steps = steps, Batch = 16, LogEvery = 2 });
        return m;
    }

    [Fact]
    public void Train_reports_progress_and_counts_steps()
    {
        using var m = MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "cpu", seed: 1);
        var reports = new List<MvqTrainProgress>();
        var r = m.Train(Data(), new MvqTrainOptions { Steps = 5, Batch = 8, LogEvery = 2 }, new SyncProgress<MvqTrainProgress>(reports.Add));
        Assert.Equal(5, r.Step);
        Assert.Equal(5, r.StepsRun);
        Assert.Equal(5, m.Step);
        Assert.Equal([2, 4, 5], reports.Select(p => p.Step));
        Assert.All(reports, p => { Assert.Equal(5, p.TotalSteps); Assert.True(double.IsFinite(p.Loss) && p.Loss > 0); });
        Assert.Equal(reports[^1].Loss, r.Loss);
    }

    [Fact]
    public void Train_stops_at_cancellation_and_keeps_the_last_step()
    {
        using var m = MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "cpu", seed: 1);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress<MvqTrainProgress>(p => { if (p.Step == 2) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => m.Train(Data(), new MvqTrainOptions { Steps = 50, Batch = 8, LogEvery = 1 }, progress, cts.Token));
        Assert.Equal(2, m.Step);
        // Still usable after the cancellation.
        Assert.Equal(m.CodeLength, m.Encode(Data(1).Pixels).Length);
    }

    [Fact]
    public void Encode_decode_and_reconstruct_agree_and_do_not_depend_on_the_call_size()
    {
        using var m = Trained();
        var x = Data(70).Pixels.ToArray();
        var codes = m.Encode(x);
        Assert.Equal(70, codes.Count);
        Assert.Equal(49, codes.Length);
        Assert.Equal(m.CodeLength, codes.Length);
        Assert.All(codes.Values, v => Assert.InRange(v, 0, 127));
        var rec = m.Reconstruct(x);
        Assert.Equal(x.Length, rec.Length);
        // Decoding the codes reproduces the evaluation-mode reconstruction exactly.
        Assert.Equal(rec, m.Decode(codes));
        var viaSpan = new float[x.Length];
        m.Decode(codes.Values, viaSpan);
        Assert.Equal(rec, viaSpan);
        // Image by image gives the same figures as one call over all of them (fixed inference batches).
        int per = m.ImageSize;
        for (int i = 0; i < 70; i += 23)
        {
            Assert.Equal(rec.AsSpan(i * per, per).ToArray(), m.Reconstruct(x.AsSpan(i * per, per)));
            Assert.Equal(codes[i].ToArray(), m.Encode(x.AsSpan(i * per, per)).Values);
        }
        var into = new int[70 * 49];
        m.Encode(x, into);
        Assert.Equal(codes.Values, into);
    }

    [Fact]
    public void Save_and_Load_give_the_same_model()
    {
        using var dir = new TempDir();
        using var m = Trained();
        m.Save(dir.File("m.safetensors"));
        using var back = MvqModel.Load(dir.File("m.safetensors"));
        var x = Data(10).Pixels;
        Assert.Equal(m.Reconstruct(x), back.Reconstruct(x));
        Assert.Equal(m.ModelJson, back.ModelJson);
        Assert.Equal("vq", back.Kind);
        Assert.Equal((1, 28, 28), (back.Channels, back.Height, back.Width));
    }

    [Fact]
    public void Train_writes_checkpoints_that_resume()
    {
        using var dir = new TempDir();
        using var m = MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "cpu", seed: 2);
        m.Train(Data(), new MvqTrainOptions { Steps = 4, Batch = 8, CheckpointPath = dir.File("c.safetensors"), CheckpointEvery = 2 });
        Assert.True(File.Exists(dir.File("c.safetensors")));
        using var back = MvqModel.Load(dir.File("c.safetensors"));
        Assert.Equal(m.Reconstruct(Data(4).Pixels), back.Reconstruct(Data(4).Pixels));
    }

    [Fact]
    public void Evaluate_reports_finite_figures()
    {
        using var m = Trained();
        var e = m.Evaluate(Data(64));
        Assert.Equal(64, e.Images);
        Assert.InRange(e.Mse, 0, 1);
        Assert.True(e.Psnr > 0 && e.Ssim <= 1 && e.CodebookUsage is > 0 and <= 1);
    }

    [Fact]
    public void Mvq_models_encode_their_three_segments()
    {
        using var m = Trained("fmnist-mvq-global", steps: 2);
        Assert.Equal("mvq", m.Kind);
        Assert.Equal(["k1", "k2", "w"], m.Segments.Select(s => s.Name));
        var x = Data(5).Pixels;
        var c = m.Encode(x);
        Assert.Equal(m.Reconstruct(x), m.Decode(c));
    }

    [Fact]
    public void Images_in_and_out_as_ImageSharp_images()
    {
        using var m = Trained();
        var x = Data(3).Pixels.ToArray();
        int per = m.ImageSize;
        var imgs = Enumerable.Range(0, 3).Select(i => m.ToImage(x.AsSpan(i * per, per))).ToList();
        try
        {
            // 8-bit images of 8-bit data: the same pixels, so the same codes.
            Assert.Equal(m.Encode(x).Values, m.Encode(imgs).Values);
            var rec = m.Reconstruct(imgs);
            Assert.Equal(3, rec.Length);
            Assert.Equal((28, 28), (rec[0].Width, rec[0].Height));
            foreach (var r in rec) r.Dispose();
        }
        finally { foreach (var i in imgs) i.Dispose(); }
    }

    [Fact]
    public void One_model_shared_by_threads_gives_the_results_of_sequential_calls()
    {
        using var m = Trained();
        using var other = Trained(steps: 3);
        var x = Data(40).Pixels.ToArray();
        int per = m.ImageSize;
        var expected = Enumerable.Range(0, 8).Select(i => m.Reconstruct(x.AsSpan(i * 5 * per, 5 * per))).ToArray();
        var expectedOther = other.Reconstruct(x);
        var got = new float[8][];
        float[]? gotOther = null;
        var threads = Enumerable.Range(0, 8).Select(i => new Thread(() => got[i] = m.Reconstruct(x.AsSpan(i * 5 * per, 5 * per))))
            .Append(new Thread(() => gotOther = other.Reconstruct(x))).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (int i = 0; i < 8; i++) Assert.Equal(expected[i], got[i]);
        Assert.Equal(expectedOther, gotOther);
    }

    [Fact]
    public void Bad_arguments_throw_documented_exceptions()
    {
        using var m = MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "cpu");
        Assert.Throws<ArgumentException>(() => m.Encode(new float[783]));
        Assert.Throws<ArgumentException>(() => m.Encode(ReadOnlySpan<float>.Empty));
        Assert.Throws<ArgumentException>(() => m.Reconstruct(new float[784], new float[700]));
        Assert.Throws<ArgumentException>(() => m.Encode(new float[784], new int[48]));
        Assert.Throws<ArgumentException>(() => m.Decode(new int[48], new float[784]));
        Assert.Throws<ArgumentException>(() => m.Decode(Enumerable.Repeat(128, 49).ToArray(), new float[784]));
        Assert.Throws<ArgumentException>(() => m.Train(MvqImages.FromPixels(new float[3 * 32 * 32], 3, 32, 32)));
        Assert.Throws<MvqUsageException>(() => MvqRecipe.Preset("no-such-preset"));
        Assert.Throws<MvqConfigException>(() => MvqRecipe.FromJson("{\"model\": {\"kind\": \"vq\", \"codez\": 3}}"));
        Assert.Throws<MvqUsageException>(() => MvqModel.Create(MvqRecipe.Preset("fmnist-vq"), "tpu"));
        using var dir = new TempDir();
        File.WriteAllText(dir.File("bad.safetensors"), "not a checkpoint");
        var e = Assert.Throws<MvqInputException>(() => MvqModel.Load(dir.File("bad.safetensors")));
        Assert.StartsWith(dir.File("bad.safetensors") + ": ", e.Message);
        Assert.Throws<MvqInputException>(() => MvqModel.Load(dir.File("missing.safetensors")));
        m.Dispose();
        Assert.Throws<ObjectDisposedException>(() => m.Encode(new float[784]));
    }

    [Fact]
    public void Recipes_from_json_replace_the_sections_they_name()
    {
        var r = MvqRecipe.FromJson("{\"train\": {\"steps\": 7, \"batch\": 4}}");
        Assert.Contains("\"steps\": 7", r.TrainJson.Replace("\"steps\":7", "\"steps\": 7"));
        Assert.Equal(MvqRecipe.Preset("fmnist-vq").ModelJson, r.ModelJson);
        Assert.Contains("fmnist-mvq", MvqRecipe.PresetNames);
    }

    [Fact]
    public void A_prior_saved_for_a_model_samples_images_that_its_codes_decode_to()
    {
        using var dir = new TempDir();
        using var m = Trained();
        var ae = m.Net;
        var layout = new MvqNative.Prior.CodeLayout(ae.Bottleneck.Segments);
        using (var p = new MvqNative.Prior.TransformerPrior(ae.Backend, new MvqNative.Prior.PriorConfig { Layers = 1, Heads = 2, Width = 16 }, layout, seed: 3))
            MvqNative.Prior.PriorCheckpoint.Save(dir.File("prior.safetensors"), p, MvqNative.Prior.AutoencoderRef.Of(ae));
        using var prior = MvqPrior.Load(dir.File("prior.safetensors"), m);
        var s = prior.Sample(5, new MvqSampleOptions(Seed: 4, Batch: 2));
        Assert.Equal(5, s.Codes.Count);
        Assert.Equal(5 * m.ImageSize, s.Images.Length);
        Assert.Equal(s.Images, m.Decode(s.Codes));
        Assert.Equal(s.Codes.Values, prior.Sample(5, new MvqSampleOptions(Seed: 4, Batch: 5)).Codes.Values);
        Assert.Throws<MvqUsageException>(() => prior.Sample(2, new MvqSampleOptions(RandomMasks: true)));
        using var other = Trained(steps: 2);
        Assert.Throws<MvqInputException>(() => MvqPrior.Load(dir.File("prior.safetensors"), other));
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
