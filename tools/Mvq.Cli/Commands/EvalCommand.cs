using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Metrics;
using MvqNative.Models;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq eval`: reconstruction quality and code usage of a model on a dataset.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "checkpoint (model.safetensors)", Required = true };
        var data = new Option<string>("--data") { Description = "dataset spec", DefaultValueFactory = _ => "fashion-mnist:test" };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N images" };
        var batch = new Option<int>("--batch") { Description = "images per forward pass", DefaultValueFactory = _ => 256 };
        var device = Cli.Device(); var json = Cli.Json(); var convert = Cli.Convert();
        var cmd = new Command("eval", "Measure mse, psnr, ssim, codebook usage and perplexity.\nExample: mvq eval --model runs/vq/model.safetensors --data fashion-mnist:test --json")
        { model, data, limit, batch, convert, device, json };
        cmd.SetAction(r =>
        {
            int bs = r.GetValue(batch);
            if (bs < 1) throw new MvqUsageException($"--batch must be >= 1, got {bs}");
            if (r.GetValue(limit) is < 1) throw new MvqUsageException($"--limit must be >= 1, got {r.GetValue(limit)}");
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var m = ModelCheckpoint.Load(r.GetValue(model)!.FullName, backend);
            var im = m.Config.Image;
            var spec = r.GetValue(data)!;
            var ds = DataSpec.Parse(spec).Load(im.Channels, im.Height, im.Width, Cli.ConvertFlag(r.GetValue(convert), im.Channels));
            // No figures of nothing: an empty dataset is refused, not reported as NaN.
            if (ds.Count < 1) throw new MvqInputException(spec, "dataset has no images to evaluate");
            bs = Math.Min(bs, ds.Count);
            ConfigChecks.CheckMemory(m.Config, bs, training: false, r.GetValue(model)!.FullName);
            var rep = Evaluator.Run(m, ds, bs, r.GetValue(limit));
            if (r.GetValue(json)) Cli.PrintJson(ToJson(rep));
            else
            {
                var t = new Table().AddColumns("figure", "value");
                t.AddRow("dataset", $"{rep.Dataset} ({rep.Images} images)");
                t.AddRow("mse", rep.Mse.ToString("F5"));
                t.AddRow("psnr (dB)", rep.Psnr.ToString("F2"));
                t.AddRow("ssim", rep.Ssim.ToString("F4"));
                t.AddRow("codebook usage", rep.CodebookUsage.ToString("P1"));
                t.AddRow("perplexity", rep.Perplexity.ToString("F1"));
                foreach (var (name, s) in rep.Codes) t.AddRow($"{name} used / perplexity", $"{s.UsedFraction:P1} of {s.Vocabulary} / {s.Perplexity:F1}");
                AnsiConsole.Write(t);
            }
            return 0;
        });
        return cmd;
    }

    public static JsonObject ToJson(EvalReport r)
    {
        var o = new JsonObject
        {
            ["dataset"] = r.Dataset,
            ["images"] = r.Images,
            ["mse"] = r.Mse,
            ["psnr"] = r.Psnr,
            ["ssim"] = r.Ssim,
            ["codebook_usage"] = r.CodebookUsage,
            ["perplexity"] = r.Perplexity,
            ["seconds"] = r.Seconds,
        };
        var codes = new JsonObject();
        foreach (var (name, s) in r.Codes)
            codes[name] = new JsonObject { ["vocabulary"] = s.Vocabulary, ["used_fraction"] = s.UsedFraction, ["perplexity"] = s.Perplexity };
        o["codes"] = codes;
        if (r.Codes.TryGetValue("w", out var w)) o["bank_win_fraction"] = w.UsedFraction;
        return o;
    }
}
