using System.CommandLine;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq eval`: reconstruction quality (rFID, KID, precision/recall, F8, F1/8, perceptual distance, mse, psnr, ssim),
/// code usage and the code budget of a model on a dataset; with --samples, generated images (gFID, ...) against the data.
/// A user command: facade only (MvqModel.Evaluate, MvqEvaluation.ScoreSamples).
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
            var opts = new MvqEvalOptions
            {
                Limit = r.GetValue(limit), Batch = bs, Features = !r.GetValue(noFeatures), FeaturesPath = r.GetValue(features)?.FullName,
                KidSubsets = r.GetValue(kidSubsets), PrLimit = r.GetValue(prLimit),
            };
            var dev = r.GetValue(device)!;
            if (sampleDir != null) return Samples(dev, sampleDir, r.GetValue(data)!, opts, r.GetValue(json));
            using var m = MvqModel.Load(modelFile!.FullName, dev);
            var spec = r.GetValue(data)!;
            var ds = InputImages.LoadSpec(spec, m, Cli.ConvertFlag(r.GetValue(convert), m.Channels));
            // No figures of nothing: an empty dataset is refused, not reported as NaN.
            if (ds.Count < 1) throw new MvqInputException(spec, "dataset has no images to evaluate");
            var rep = m.Evaluate(ds, opts);
            string? skipped = r.GetValue(noFeatures) ? "--no-features" : rep.FeatureMetricsSkipped;
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
                t.AddRow("tokens / bits per instance", $"{rep.TokensPerInstance} / {rep.BitsPerInstance:F2} ({string.Join(" + ", rep.BitsPerSegment.Select(kv => $"{kv.Key} {kv.Value:F1}"))})");
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

    private static int Samples(string device, DirectoryInfo dir, string dataSpec, MvqEvalOptions opts, bool json)
    {
        var sc = MvqEvaluation.ScoreSamples(dir.FullName, dataSpec, opts, device);
        var d = sc.Scores;
        if (json)
        {
            var o = new JsonObject { ["samples"] = dir.FullName, ["sample_images"] = sc.SampleImages, ["dataset"] = sc.Dataset, ["real_images"] = sc.RealImages };
            AddDistributionJson(o, d, "gfid");
            o["seconds"] = sc.Seconds;
            Cli.PrintJson(o);
        }
        else
        {
            var t = new Table().AddColumns("figure", "value");
            t.AddRow("samples", $"{dir.FullName} ({sc.SampleImages} images) against {sc.Dataset} ({sc.RealImages} images)");
            AddDistribution(t, d, "gFID");
            AnsiConsole.Write(t);
        }
        return 0;
    }

    private static void AddDistribution(Table t, MvqDistributionScores d, string fidName)
    {
        t.AddRow(fidName, d.Fid.ToString("F3"));
        t.AddRow("KID (x1000)", $"{d.Kid * 1000:F3} ± {d.KidStd * 1000:F3}");
        t.AddRow($"precision / recall (k=3, {d.PrImages} images)", d.Precision is null ? "- (too few images)" : $"{d.Precision:F4} / {d.Recall:F4}");
        t.AddRow("F8 / F1/8 (PRD)", d.F8 is null ? "- (too few images)" : $"{d.F8:F4} / {d.F1_8:F4}");
        if (d.Perceptual is double p) t.AddRow("perceptual distance", p.ToString("F5"));
        t.AddRow("feature network", d.Network);
    }

    private static void AddDistributionJson(JsonObject o, MvqDistributionScores d, string fidName)
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
        o["stage_seconds"] = new JsonObject(d.StageSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 3))));
    }

    public static JsonObject ToJson(MvqEvaluation r)
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
        o["tokens_per_instance"] = r.TokensPerInstance;
        o["bits_per_instance"] = r.BitsPerInstance;
        o["bits"] = new JsonObject(r.BitsPerSegment.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
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
