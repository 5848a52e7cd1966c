using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Metrics;
using MvqNative.Models;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq eval`: reconstruction quality (rFID, KID, precision/recall, F8, F1/8, perceptual distance, mse, psnr, ssim),
/// code usage and the code budget of a model on a dataset; with --samples, generated images (gFID, ...) against the data.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo?>("--model") { Description = "checkpoint (model.safetensors)" };
        var samples = new Option<DirectoryInfo?>("--samples") { Description = "folder of generated images (PNG...) to score against --data instead of a model" };
        var data = new Option<string>("--data") { Description = "dataset spec (the real images)", DefaultValueFactory = _ => "fashion-mnist:test" };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N images" };
        var batch = new Option<int>("--batch") { Description = "images per forward pass", DefaultValueFactory = _ => 256 };
        var features = new Option<FileInfo?>("--features") { Description = "feature network (default: the committed FashionMNIST CNN)" };
        var noFeatures = new Option<bool>("--no-features") { Description = "skip the feature-space metrics (rFID, KID, precision/recall, F-scores, perceptual)" };
        var prLimit = new Option<int>("--pr-limit") { Description = "images per set for precision/recall and PRD (cost ~ n^2)", DefaultValueFactory = _ => 5000 };
        var kidSubsets = new Option<int>("--kid-subsets") { Description = "KID subsets (of 1000 images each)", DefaultValueFactory = _ => 20 };
        var device = Cli.Device(); var json = Cli.Json(); var convert = Cli.Convert();
        var cmd = new Command("eval", "Measure rFID, KID, precision, recall, F8, F1/8, perceptual distance, mse, psnr, ssim, code usage, tokens and bits per instance.\n" +
            "Example: mvq eval --model runs/vq/model.safetensors --data fashion-mnist:test --json\n         mvq eval --samples samples/ --data fashion-mnist:test --json")
        { model, samples, data, limit, batch, features, noFeatures, prLimit, kidSubsets, convert, device, json };
        cmd.SetAction(r =>
        {
            var modelFile = r.GetValue(model); var sampleDir = r.GetValue(samples);
            if ((modelFile is null) == (sampleDir is null)) throw new MvqUsageException("give either --model or --samples");
            int bs = r.GetValue(batch);
            if (bs < 1) throw new MvqUsageException($"--batch must be >= 1, got {bs}");
            if (r.GetValue(limit) is < 1) throw new MvqUsageException($"--limit must be >= 1, got {r.GetValue(limit)}");
            var opts = new DistributionOptions(KidSubsets: Math.Max(1, r.GetValue(kidSubsets)), PrLimit: Math.Max(4, r.GetValue(prLimit)), Batch: Math.Max(1, r.GetValue(batch)));
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            if (sampleDir != null) return Samples(backend, sampleDir, r.GetValue(data)!, r.GetValue(features)?.FullName, r.GetValue(limit), opts, r.GetValue(json));
            using var m = ModelCheckpoint.Load(modelFile!.FullName, backend);
            var im = m.Config.Image;
            var spec = r.GetValue(data)!;
            var ds = DataSpec.Parse(spec).Load(im.Channels, im.Height, im.Width, Cli.ConvertFlag(r.GetValue(convert), im.Channels));
            // No figures of nothing: an empty dataset is refused, not reported as NaN.
            if (ds.Count < 1) throw new MvqInputException(spec, "dataset has no images to evaluate");
            bs = Math.Min(bs, ds.Count);
            ConfigChecks.CheckMemory(m.Config, bs, training: false, modelFile.FullName);
            string? skipped = r.GetValue(noFeatures) ? "--no-features"
                : r.GetValue(features) is null && !FeatureNet.HasDefault ? "no feature network is embedded in this build; pass --features" : null;
            var net = skipped != null ? null : FeatureNet.Load(backend, r.GetValue(features)?.FullName);
            if (net != null && r.GetValue(features) is null && (net.Config.Channels, net.Config.Height, net.Config.Width) != (im.Channels, im.Height, im.Width))
            {
                // The committed network is FashionMNIST's; other image shapes need their own (--features).
                skipped = $"the default feature network takes {net.Config.Channels}x{net.Config.Height}x{net.Config.Width} images, the model {im.Channels}x{im.Height}x{im.Width}; pass --features";
                net.Dispose(); net = null;
            }
            if (net != null && (net.Config.Channels, net.Config.Height, net.Config.Width) != (im.Channels, im.Height, im.Width))
            {
                var c = net.Config; net.Dispose();
                throw new MvqUsageException($"--features: the network takes {c.Channels}x{c.Height}x{c.Width} images, the model {im.Channels}x{im.Height}x{im.Width}");
            }
            EvalReport rep;
            try { rep = Evaluator.Run(m, ds, bs, r.GetValue(limit), features: net, options: opts); }
            finally { net?.Dispose(); }
            if (r.GetValue(json))
            {
                var o = ToJson(rep);
                if (skipped != null) o["feature_metrics_skipped"] = skipped;
                Cli.PrintJson(o);
            }
            else
            {
                var t = new Table().AddColumns("figure", "value");
                t.AddRow("dataset", $"{rep.Dataset} ({rep.Images} images)");
                if (rep.Distribution is { } d) AddDistribution(t, d, "rFID");
                t.AddRow("mse", rep.Mse.ToString("F5"));
                t.AddRow("psnr (dB)", rep.Psnr.ToString("F2"));
                t.AddRow("ssim", rep.Ssim.ToString("F4"));
                if (rep.Budget is { } b) t.AddRow("tokens / bits per instance", $"{b.Tokens} / {b.Bits:F2} ({string.Join(" + ", b.BitsPerSegment.Select(kv => $"{kv.Key} {kv.Value:F1}"))})");
                t.AddRow("codebook usage", rep.CodebookUsage.ToString("P1"));
                t.AddRow("perplexity", rep.Perplexity.ToString("F1"));
                foreach (var (name, s) in rep.Codes) t.AddRow($"{name} used / perplexity", $"{s.UsedFraction:P1} of {s.Vocabulary} / {s.Perplexity:F1}");
                if (skipped != null) t.AddRow("feature metrics", "skipped: " + skipped);
                AnsiConsole.Write(t);
            }
            return 0;
        });
        return cmd;
    }

    private static int Samples(MvqNative.Backends.Backend backend, DirectoryInfo dir, string dataSpec, string? featuresPath, int? limit, DistributionOptions opts, bool json)
    {
        using var net = FeatureNet.Load(backend, featuresPath);
        var c = net.Config;
        // A folder written by `mvq sample` / `mvq decode` (it has codes.json) also holds grid.png, the overview of the
        // first instances: that is not a sample, and scoring it as one would add a resized grid to the generated set.
        var skip = File.Exists(Path.Combine(dir.FullName, "codes.json")) ? new HashSet<string> { "grid.png" } : null;
        var gen = MvqNative.Data.ImageFolder.Load(dir.FullName, c.Channels, c.Height, c.Width, skipNames: skip);
        var real = DataSpec.Parse(dataSpec).Load(c.Channels, c.Height, c.Width);
        int nGen = Math.Min(gen.Count, limit ?? int.MaxValue), nReal = Math.Min(real.Count, limit ?? int.MaxValue);
        if (nGen < 2) throw new MvqInputException(dir.FullName, "fewer than two images to score");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var d = DistributionMetrics.Score(net, real.Pixels.AsSpan(0, nReal * real.ImageSize), nReal, gen.Pixels.AsSpan(0, nGen * gen.ImageSize), nGen, paired: false, opts);
        if (json)
        {
            var o = new JsonObject { ["samples"] = dir.FullName, ["sample_images"] = nGen, ["dataset"] = real.Name, ["real_images"] = nReal };
            AddDistributionJson(o, d, "gfid");
            o["seconds"] = sw.Elapsed.TotalSeconds;
            Cli.PrintJson(o);
        }
        else
        {
            var t = new Table().AddColumns("figure", "value");
            t.AddRow("samples", $"{dir.FullName} ({nGen} images) against {real.Name} ({nReal} images)");
            AddDistribution(t, d, "gFID");
            AnsiConsole.Write(t);
        }
        return 0;
    }

    private static void AddDistribution(Table t, DistributionReport d, string fidName)
    {
        t.AddRow(fidName, d.Fid.ToString("F3"));
        t.AddRow("KID (x1000)", $"{d.Kid * 1000:F3} ± {d.KidStd * 1000:F3}");
        t.AddRow($"precision / recall (k=3, {d.PrImages} images)", d.Precision is null ? "- (too few images)" : $"{d.Precision:F4} / {d.Recall:F4}");
        t.AddRow("F8 / F1/8 (PRD)", d.F8 is null ? "- (too few images)" : $"{d.F8:F4} / {d.F1_8:F4}");
        if (d.Perceptual is double p) t.AddRow("perceptual distance", p.ToString("F5"));
        t.AddRow("feature network", d.Network);
    }

    private static void AddDistributionJson(JsonObject o, DistributionReport d, string fidName)
    {
        o[fidName] = d.Fid;
        o["kid"] = d.Kid;
        o["kid_std"] = d.KidStd;
        o["precision"] = d.Precision;
        o["recall"] = d.Recall;
        o["f8"] = d.F8;
        o["f1_8"] = d.F1_8;
        if (d.Perceptual is double p) o["perceptual"] = p;
        o["pr_images"] = d.PrImages;
        o["feature_network"] = d.Network;
        o["stage_seconds"] = new JsonObject(d.Seconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3))));
    }

    public static JsonObject ToJson(EvalReport r)
    {
        var o = new JsonObject
        {
            ["dataset"] = r.Dataset,
            ["images"] = r.Images,
        };
        if (r.Distribution is { } d) AddDistributionJson(o, d, "rfid");
        o["mse"] = r.Mse;
        o["psnr"] = r.Psnr;
        o["ssim"] = r.Ssim;
        if (r.Budget is { } b)
        {
            o["tokens_per_instance"] = b.Tokens;
            o["bits_per_instance"] = b.Bits;
            o["bits"] = new JsonObject(b.BitsPerSegment.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        }
        o["codebook_usage"] = r.CodebookUsage;
        o["perplexity"] = r.Perplexity;
        o["seconds"] = r.Seconds;
        o["reconstruction_seconds"] = Math.Round(r.ReconstructionSeconds, 3);
        var codes = new JsonObject();
        foreach (var (name, s) in r.Codes)
            codes[name] = new JsonObject { ["vocabulary"] = s.Vocabulary, ["used_fraction"] = s.UsedFraction, ["perplexity"] = s.Perplexity };
        o["codes"] = codes;
        if (r.Codes.TryGetValue("w", out var w)) o["bank_win_fraction"] = w.UsedFraction;
        return o;
    }
}
