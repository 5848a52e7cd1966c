using System.CommandLine;
using System.Text.Json.Nodes;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq prior train`: encodes the data with an autoencoder once (codes cached in the output folder, tied to the
/// autoencoder), trains the transformer prior, evaluates held-out NLL against the unigram baselines, and writes
/// prior.safetensors, metrics.json and loss.png. A user command: facade only (MvqModel.Encode, MvqCodes caches, MvqPrior).
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
            using var ae = MvqModel.Load(modelPath, r.GetValue(device)!);
            var options = new MvqPriorOptions
            {
                Steps = r.GetValue(steps), Batch = r.GetValue(batch), LearningRate = r.GetValue(lr), Seed = r.GetValue(seed),
                Layers = r.GetValue(layers), Heads = r.GetValue(heads), Width = r.GetValue(width), Dropout = r.GetValue(dropout),
                CheckpointPath = Path.Combine(r.GetValue(output)!.FullName, "prior.safetensors"),
            };
            return Run(ae, options, r.GetValue(data)!, r.GetValue(limit), r.GetValue(output)!.FullName, r.GetValue(resume)?.FullName, r.GetValue(json));
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
    private static MvqCodes Codes(MvqModel ae, string spec, int? limit, string dir, bool json)
    {
        var path = Path.Combine(dir, CacheName(spec, limit));
        var key = spec + (limit is int n ? $" (first {n})" : "");
        if (MvqCodes.LoadCache(path, ae, key) is MvqCodes cached)
        {
            Log(json, $"codes of {key}: {cached.Count} images from the cache {path}");
            return cached;
        }
        var ds = InputImages.LoadSpec(spec, ae, convert: false);
        if (limit is int m && m < ds.Count) ds = MvqImages.FromPixels(ds.Pixels[..(m * ae.ImageSize)], ae.Channels, ae.Height, ae.Width, ds.Name);
        if (ds.Count < 1) throw new MvqUsageException($"{spec}: dataset is empty");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var codes = ae.Encode(ds.Pixels, batch: 256);
        codes.SaveCache(path, ae, key);
        Log(json, $"encoded {ds.Count} images of {key} in {sw.Elapsed.TotalSeconds:F1} s; cached in {path}");
        return codes;
    }

    /// <summary>Reports on the calling thread, in order (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class Inline<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    private static int Run(MvqModel ae, MvqPriorOptions options, string spec, int? limit, string dir, string? resume, bool json)
    {
        var layout = string.Join(", ", ae.Segments.Select(s => $"{s.Name} [{s.Length}] of {s.Vocabulary}"));
        // Read what --resume names before anything is written, so a bad file costs nothing.
        using var prior = resume != null ? MvqPrior.Resume(resume, ae, options) : MvqPrior.Create(ae, options);
        Directory.CreateDirectory(dir);
        var train = Codes(ae, spec, limit, dir, json);
        int t = ae.CodeLength;
        MvqCodes held;
        string heldName;
        if (spec.StartsWith("fashion-mnist", StringComparison.Ordinal))
        {
            held = Codes(ae, "fashion-mnist:test", null, dir, json);
            heldName = "fashion-mnist:test";
        }
        else
        {
            // No test split: the last 10% of the images are held out (at least one), the rest trains.
            int n = train.Count, h = Math.Max(1, n / 10);
            if (n < 2) throw new MvqUsageException($"{spec}: needs at least 2 images (one is held out)");
            held = new MvqCodes(train.Values[((n - h) * t)..], train.Segments);
            train = new MvqCodes(train.Values[..((n - h) * t)], train.Segments);
            heldName = $"last {h} images of {spec}";
        }

        var ckpt = options.CheckpointPath!;
        if (resume != null) Log(json, $"resumed from {resume} at step {prior.Step}");
        Log(json, $"training a prior ({prior.Layers} layers, {prior.Heads} heads, width {prior.Width}, {prior.ParameterCount:N0} parameters) on {ae.DeviceKind} over {layout} " +
                  $"(T = {t}, V = {ae.Segments.Sum(s => s.Vocabulary)}): {prior.TotalSteps} steps x {prior.Batch} images of {train.Count} ({MvqModel.CpuThreads} threads)");
        var history = new List<MvqPriorProgress>();
        var started = DateTime.UtcNow;
        var result = prior.Train(train, new Inline<MvqPriorProgress>(st =>
        {
            history.Add(st);
            Log(json, $"step {st.Step,6} | loss {st.Loss:F4} | {st.BitsPerToken:F3} bits/token | grad {st.GradNorm:F3} | lr {st.LearningRate:E2} | {st.MillisecondsPerStep:F1} ms | {st.TokensPerSecond:F0} tokens/s");
        }));
        double seconds = (DateTime.UtcNow - started).TotalSeconds;
        var ev = prior.Evaluate(held, train);
        SavePlot(Path.Combine(dir, "loss.png"), history, $"prior over {(ae.Kind == "vq" ? "Vq" : "Mvq")} {HeadName(ae)} codes (T = {t})");
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
            ["autoencoder"] = new JsonObject { ["kind"] = ae.Kind, ["config_hash"] = ae.ConfigHash, ["weights_hash"] = ae.WeightsHash, ["layout"] = layout },
            ["prior"] = JsonNode.Parse(prior.ConfigJson), ["train"] = JsonNode.Parse(prior.TrainJson),
            ["device"] = ae.DeviceKind, ["threads"] = MvqModel.CpuThreads, ["parameters"] = prior.ParameterCount,
            ["train_images"] = train.Count, ["steps"] = result.Step, ["seconds"] = seconds,
            ["history"] = new JsonArray(history.Select(h => (JsonNode)new JsonObject
            {
                ["step"] = h.Step, ["loss"] = h.Loss, ["bits_per_token"] = h.BitsPerToken, ["grad_norm"] = h.GradNorm,
                ["lr"] = h.LearningRate, ["ms"] = h.MillisecondsPerStep, ["tokens_per_s"] = h.TokensPerSecond,
            }).ToArray()),
            ["eval"] = evalJson,
        };
        var text = metrics.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        MvqNative.IO.AtomicFile.Write(Path.Combine(dir, "metrics.json"), s => { using var w = new StreamWriter(s, leaveOpen: true); w.Write(text); });
        if (json) Cli.PrintJson(new JsonObject { ["out"] = dir, ["steps"] = result.Step, ["seconds"] = seconds, ["eval"] = evalJson.DeepClone() });
        else
        {
            Console.WriteLine($"done in {seconds:F0} s; held-out ({ev.Images} images of {heldName}): {ev.NatsPerToken:F4} nats/token, {ev.BitsPerImage:F1} bits/image " +
                              $"(unigram baselines: {ev.UnigramPositionBitsPerImage:F1} per position, {ev.UnigramSegmentBitsPerImage:F1} per segment)");
            Console.WriteLine($"wrote {ckpt}, metrics.json, loss.png in {dir}");
        }
        return 0;
    }

    /// <summary>The model's head kind as the plot title names it (Grid or Global).</summary>
    private static string HeadName(MvqModel ae)
    {
        var head = System.Text.Json.Nodes.JsonNode.Parse(ae.ModelJson)?["head"]?.GetValue<string>() ?? "";
        return head.Length == 0 ? head : char.ToUpperInvariant(head[0]) + head[1..];
    }

    private static void SavePlot(string path, IReadOnlyList<MvqPriorProgress> history, string title)
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
