using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Backends.Cpu;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Models;
using MvqNative.Prior;
using MvqNative.Training;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq prior train`: encodes the data with an autoencoder once (codes cached in the output folder, tied to the
/// autoencoder), trains the transformer prior, evaluates held-out NLL against the unigram baselines, and writes
/// prior.safetensors, metrics.json and loss.png.
/// </summary>
internal static class PriorCommand
{
    public static Command Create()
    {
        var cmd = new Command("prior", "The autoregressive prior over an autoencoder's codes.");
        cmd.Subcommands.Add(Train());
        return cmd;
    }

    private static Command Train()
    {
        var model = new Option<FileInfo>("--model") { Description = "autoencoder checkpoint (mvq train's model.safetensors)", Required = true };
        var data = new Option<string>("--data") { Description = "fashion-mnist[:train] | folder:PATH | idx:PATH", DefaultValueFactory = _ => "fashion-mnist:train" };
        var output = new Option<DirectoryInfo>("--out") { Description = "output folder (codes caches, prior.safetensors, metrics.json, loss.png)", Required = true };
        var steps = new Option<int?>("--steps") { Description = "training steps (default: the autoencoder's recipe, docs/prior.md)" };
        var batch = new Option<int?>("--batch") { Description = "sequences (images) per step" };
        var lr = new Option<float?>("--lr") { Description = "peak learning rate" };
        var layers = new Option<int?>("--layers") { Description = "transformer blocks" };
        var heads = new Option<int?>("--heads") { Description = "attention heads" };
        var width = new Option<int?>("--width") { Description = "model width C" };
        var dropout = new Option<float?>("--dropout") { Description = "dropout on attention and MLP outputs, in [0, 1) (default 0)" };
        var limit = new Option<int?>("--limit") { Description = "use only the first N training images" };
        var resume = new Option<FileInfo?>("--resume") { Description = "continue from a prior.safetensors written by mvq prior train" };
        var device = Cli.Device(); var seed = Cli.Seed(); var json = Cli.Json();
        var cmd = new Command("train", "Train a transformer prior over an autoencoder's codes.\nExample: mvq prior train --model runs/vq/model.safetensors --data fashion-mnist:train --out runs/vq-prior")
        { model, data, output, steps, batch, lr, layers, heads, width, dropout, limit, resume, device, seed, json };
        cmd.SetAction(r =>
        {
            var modelPath = r.GetValue(model)!.FullName;
            if (!File.Exists(modelPath)) throw new MvqInputException(modelPath, "model file does not exist");
            if (r.GetValue(limit) is int lim && lim < 1) throw new MvqUsageException($"--limit must be >= 1, got {lim}");
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var ae = ModelCheckpoint.Load(modelPath, backend);
            var (pc, tc) = PriorConfig.DefaultFor(ae.Config);
            if (r.GetValue(steps) is int s) tc.Steps = s;
            if (r.GetValue(batch) is int b) tc.Batch = b;
            if (r.GetValue(lr) is float l) tc.Lr = l;
            if (r.GetValue(seed) is int sd) tc.Seed = sd;
            if (r.GetValue(layers) is int ly) pc.Layers = ly;
            if (r.GetValue(heads) is int hd) pc.Heads = hd;
            if (r.GetValue(width) is int wd) pc.Width = wd;
            if (r.GetValue(dropout) is float dp) pc.Dropout = dp;
            if (tc.Steps < 1 || tc.Batch < 1) throw new MvqUsageException("--steps and --batch must be >= 1");
            if (!(tc.Lr > 0)) throw new MvqUsageException($"--lr must be > 0, got {tc.Lr}");
            pc.Validate();
            return Run(ae, pc, tc, r.GetValue(data)!, r.GetValue(limit), r.GetValue(output)!.FullName, r.GetValue(resume)?.FullName, r.GetValue(json));
        });
        return cmd;
    }

    private static void Log(bool json, string line)
    {
        if (json) Console.Error.WriteLine(line); else Console.WriteLine(line);
    }

    private static string CacheName(string spec, int? limit)
    {
        var safe = new string(spec.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_').ToArray());
        if (safe.Length > 60) safe = safe[..60];
        return $"codes-{safe}{(limit is int n ? "-first" + n : "")}.safetensors";
    }

    /// <summary>Codes of a data spec, from the cache in <paramref name="dir"/> or encoded now (and cached).</summary>
    private static int[] Codes(Autoencoder ae, AutoencoderRef aeRef, CodeLayout layout, string spec, int? limit, string dir, bool json)
    {
        var path = Path.Combine(dir, CacheName(spec, limit));
        var key = spec + (limit is int n ? $" (first {n})" : "");
        if (CodesCache.TryLoad(path, layout, aeRef, key) is int[] cached)
        {
            Log(json, $"codes of {key}: {cached.Length / layout.Length} images from the cache {path}");
            return cached;
        }
        var im = ae.Config.Image;
        var ds = DataSpec.Parse(spec).Load(im.Channels, im.Height, im.Width);
        if (limit is int m) ds = ds.Subset(Math.Min(m, ds.Count));
        if (ds.Count < 1) throw new MvqUsageException($"{spec}: dataset is empty");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var codes = DatasetEncoder.Encode(ae, ds);
        CodesCache.Save(path, codes, layout, aeRef, key);
        Log(json, $"encoded {ds.Count} images of {key} in {sw.Elapsed.TotalSeconds:F1} s; cached in {path}");
        return codes;
    }

    private static int Run(Autoencoder ae, PriorConfig pc, TrainConfig tc, string spec, int? limit, string dir, string? resume, bool json)
    {
        var backend = ae.Backend;
        var aeRef = AutoencoderRef.Of(ae);
        var layout = new CodeLayout(ae.Bottleneck.Segments);
        // Read what --resume names before anything is written, so a bad file costs nothing.
        if (resume != null)
        {
            var (rc, _, owner, _) = PriorCheckpoint.ReadHeader(resume);
            owner.Check(aeRef, resume, "prior");
            pc = rc;
        }
        Directory.CreateDirectory(dir);
        var train = Codes(ae, aeRef, layout, spec, limit, dir, json);
        int t = layout.Length;
        int[] held;
        string heldName;
        if (spec.StartsWith("fashion-mnist", StringComparison.Ordinal))
        {
            held = Codes(ae, aeRef, layout, "fashion-mnist:test", null, dir, json);
            heldName = "fashion-mnist:test";
        }
        else
        {
            // No test split: the last 10% of the images are held out (at least one), the rest trains.
            int n = train.Length / t, h = Math.Max(1, n / 10);
            if (n < 2) throw new MvqUsageException($"{spec}: needs at least 2 images (one is held out)");
            held = train[((n - h) * t)..];
            train = train[..((n - h) * t)];
            heldName = $"last {h} images of {spec}";
        }

        using var prior = new TransformerPrior(backend, pc, layout, tc.Seed);
        using var trainer = new PriorTrainer(backend, prior, tc, train);
        var ckpt = Path.Combine(dir, "prior.safetensors");
        if (resume != null) Log(json, $"resumed from {resume} at step {PriorCheckpoint.RestoreTraining(resume, trainer, aeRef)}");
        Log(json, $"training a prior ({pc.Layers} layers, {pc.Heads} heads, width {pc.Width}, {prior.ParameterCount:N0} parameters) on {backend.Name} over {layout} " +
                  $"(T = {t}, V = {layout.Vocabulary}): {tc.Steps} steps x {tc.Batch} images of {train.Length / t} ({CpuParallel.Threads} threads)");
        var history = new List<PriorStepStats>();
        var started = DateTime.UtcNow;
        while (trainer.Step < tc.Steps)
        {
            var st = trainer.TrainStep();
            if (st != null)
            {
                history.Add(st);
                Log(json, $"step {st.Step,6} | loss {st.Loss:F4} | {st.BitsPerToken:F3} bits/token | grad {st.GradNorm:F3} | lr {st.Lr:E2} | {st.MsPerStep:F1} ms | {st.TokensPerSecond:F0} tokens/s");
            }
            if (tc.CheckpointEvery > 0 && trainer.Step % tc.CheckpointEvery == 0 && trainer.Step < tc.Steps)
                PriorCheckpoint.Save(ckpt, prior, aeRef, trainer);
        }
        PriorCheckpoint.Save(ckpt, prior, aeRef, trainer);
        double seconds = (DateTime.UtcNow - started).TotalSeconds;
        var ev = PriorEvaluator.Run(prior, held, train);
        SavePlot(Path.Combine(dir, "loss.png"), history, $"prior over {ae.Config.Kind} {ae.Config.Head} codes (T = {t})");
        var evalJson = new JsonObject
        {
            ["dataset"] = heldName, ["images"] = ev.Images, ["tokens_per_image"] = ev.TokensPerImage,
            ["nats_per_token"] = ev.NatsPerToken, ["bits_per_image"] = ev.BitsPerImage,
            ["unigram_position_bits_per_image"] = ev.UnigramPositionBitsPerImage,
            ["unigram_segment_bits_per_image"] = ev.UnigramSegmentBitsPerImage,
            ["bits_per_image_by_segment"] = new JsonObject(ev.BitsPerImageBySegment.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        };
        var metrics = new JsonObject
        {
            ["autoencoder"] = new JsonObject { ["kind"] = aeRef.Kind, ["config_hash"] = aeRef.ConfigHash, ["weights_hash"] = aeRef.WeightsHash, ["layout"] = layout.ToString() },
            ["prior"] = JsonNode.Parse(pc.ToJson()), ["train"] = JsonNode.Parse(tc.ToJson()),
            ["device"] = backend.Name, ["threads"] = CpuParallel.Threads, ["parameters"] = prior.ParameterCount,
            ["train_images"] = train.Length / t, ["steps"] = trainer.Step, ["seconds"] = seconds,
            ["history"] = new JsonArray(history.Select(h => (JsonNode)new JsonObject
            {
                ["step"] = h.Step, ["loss"] = h.Loss, ["bits_per_token"] = h.BitsPerToken, ["grad_norm"] = h.GradNorm,
                ["lr"] = h.Lr, ["ms"] = h.MsPerStep, ["tokens_per_s"] = h.TokensPerSecond,
            }).ToArray()),
            ["eval"] = evalJson,
        };
        var text = metrics.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        MvqNative.IO.AtomicFile.Write(Path.Combine(dir, "metrics.json"), s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(text); });
        if (json) Cli.PrintJson(new JsonObject { ["out"] = dir, ["steps"] = trainer.Step, ["seconds"] = seconds, ["eval"] = evalJson.DeepClone() });
        else
        {
            Console.WriteLine($"done in {seconds:F0} s; held-out ({ev.Images} images of {heldName}): {ev.NatsPerToken:F4} nats/token, {ev.BitsPerImage:F1} bits/image " +
                              $"(unigram baselines: {ev.UnigramPositionBitsPerImage:F1} per position, {ev.UnigramSegmentBitsPerImage:F1} per segment)");
            Console.WriteLine($"wrote {ckpt}, metrics.json, loss.png in {dir}");
        }
        return 0;
    }

    private static void SavePlot(string path, IReadOnlyList<PriorStepStats> history, string title)
    {
        var plt = new ScottPlot.Plot();
        if (history.Count > 0)
        {
            var sc = plt.Add.Scatter(history.Select(h => (double)h.Step).ToArray(), history.Select(h => h.BitsPerToken).ToArray());
            sc.LegendText = "training bits per token";
            plt.ShowLegend();
        }
        plt.Title(title);
        plt.XLabel("step");
        plt.YLabel("bits per token");
        var tmp = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".tmp.png");
        plt.SavePng(tmp, 800, 500);
        File.Move(tmp, path, overwrite: true);
    }
}
