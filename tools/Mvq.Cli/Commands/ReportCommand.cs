// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq report`: tables (mean and standard deviation over seeds) and ScottPlot figures of a sweep's
/// cells.json (tools/experiments/sweep.py eval): rFID against bits per instance, rFID against K at 2 and
/// 5 tokens, rFID and step time against J, and the training-loss curves.
/// </summary>
internal static class ReportCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var cells = new Option<FileInfo>("--cells") { Description = "cells.json written by tools/experiments/sweep.py eval", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for table.md and the PNGs", Required = true };
        var bench = new Option<FileInfo?>("--bench") { Description = "mvq bench mvq --json output, for step time against J" };
        var lossOnly = new Option<string?>("--loss-cells") { Description = "comma-separated groups or cell names drawn in loss-curves.png (default: every cell)" };
        var cmd = new Command("report", "Tables and plots of a VQ/MVQ sweep (tools/experiments/sweep.py).\nExample: mvq report --cells runs/sweep/cells.json --out docs/results --bench docs/results/bench-mvq.json --loss-cells paper-L2,paper-L5,equal-bits")
        { cells, output, bench, lossOnly };
        cmd.SetAction(r =>
        {
            var file = r.GetValue(cells)!;
            if (!file.Exists) throw new MvqInputException(file.FullName, "cells file not found");
            JsonArray arr;
            try { arr = JsonNode.Parse(File.ReadAllText(file.FullName)) as JsonArray ?? throw new MvqInputException(file.FullName, "expected a JSON array of cells"); }
            catch (System.Text.Json.JsonException e) { throw new MvqInputException(file.FullName, "invalid JSON: " + e.Message); }
            var dir = r.GetValue(output)!.FullName;
            Directory.CreateDirectory(dir);
            var groups = Aggregate(arr);
            File.WriteAllText(Path.Combine(dir, "table.md"), Table(groups));
            PlotBits(groups, Path.Combine(dir, "rfid-vs-bits.png"));
            PlotK(groups, Path.Combine(dir, "rfid-vs-k.png"));
            PlotJ(groups, r.GetValue(bench)?.FullName, Path.Combine(dir, "j-sweep.png"));
            var only = r.GetValue(lossOnly)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
            PlotLoss(new JsonArray(arr.Where(o => only is null || only.Contains(o!["name"]!.GetValue<string>()) || only.Contains(o!["group"]!.GetValue<string>()))
                .Select(o => o!.DeepClone()).ToArray()), Path.Combine(dir, "loss-curves.png"));
            Console.WriteLine($"wrote table.md, rfid-vs-bits.png, rfid-vs-k.png, j-sweep.png, loss-curves.png in {dir} ({groups.Count} cells, {arr.Count} runs)");
            return 0;
        });
        return cmd;
    }

    /// <summary>One cell (name) over its seeds.</summary>
    internal sealed record Cell(string Name, string Group, string Kind, int K, int Tokens, int L2, int J, double Bits, int Steps, int[] Seeds,
        Dictionary<string, (double Mean, double Std)> Stats, double WallSeconds);

    internal static readonly string[] Keys = ["rfid", "kid", "precision", "recall", "f8", "f1_8", "perceptual", "mse", "psnr", "ssim"];

    internal static List<Cell> Aggregate(JsonArray arr)
    {
        var cells = new List<Cell>();
        foreach (var g in arr.Select(n => n!.AsObject()).GroupBy(o => o["name"]!.GetValue<string>()))
        {
            var first = g.First();
            var m = first["model"]!;
            string kind = m["kind"]!.GetValue<string>();
            var stats = new Dictionary<string, (double, double)>();
            foreach (var k in Keys)
            {
                var v = g.Select(o => o["eval"]?[k]).Where(x => x != null).Select(x => x!.GetValue<double>()).ToArray();
                if (v.Length == 0) continue;
                double mean = v.Average();
                double std = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : double.NaN;
                stats[k] = (mean, std);
            }
            cells.Add(new Cell(g.Key, first["group"]!.GetValue<string>(), kind,
                m["codes"]!.GetValue<int>(), m["tokens"]!.GetValue<int>(),
                kind == "mvq" ? m["secondary"]!["tokens"]!.GetValue<int>() : 0,
                kind == "mvq" ? m["mvq"]!["hypotheses"]!.GetValue<int>() : 0,
                first["bits_per_instance"]!.GetValue<double>(), first["steps"]!.GetValue<int>(),
                g.Select(o => o["seed"]!.GetValue<int>()).OrderBy(s => s).ToArray(), stats,
                g.Sum(o => o["wall_s"]?.GetValue<double>() ?? 0)));
        }
        return cells;
    }

    private static string F(Cell c, string key, string fmt)
    {
        if (!c.Stats.TryGetValue(key, out var s)) return "-";
        return double.IsNaN(s.Std) ? s.Mean.ToString(fmt, Inv) + " (1 seed)" : $"{s.Mean.ToString(fmt, Inv)} ± {s.Std.ToString(fmt, Inv)}";
    }

    internal static string Table(List<Cell> cells)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| cell | group | kind | K1 | L1 | L2 | J | bits / instance | seeds | steps | rFID | KID | precision | recall | F8 | F1/8 | perceptual | mse | psnr | train s (all seeds) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var c in cells)
            sb.AppendLine($"| {c.Name} | {c.Group} | {c.Kind} | {c.K} | {c.Tokens} | {(c.Kind == "mvq" ? c.L2 : "-")} | {(c.Kind == "mvq" ? c.J : "-")} | {c.Bits.ToString("0.#", Inv)} | {string.Join(",", c.Seeds)} | {c.Steps} | " +
                $"{F(c, "rfid", "F2")} | {F(c, "kid", "F3")} | {F(c, "precision", "F3")} | {F(c, "recall", "F3")} | {F(c, "f8", "F3")} | {F(c, "f1_8", "F3")} | {F(c, "perceptual", "F4")} | {F(c, "mse", "F5")} | {F(c, "psnr", "F2")} | {c.WallSeconds.ToString("F0", Inv)} |");
        return sb.ToString();
    }

    private static void AddSeries(ScottPlot.Plot plt, IEnumerable<Cell> cells, Func<Cell, double> x, string label)
    {
        var pts = cells.Where(c => c.Stats.ContainsKey("rfid")).OrderBy(x).ToArray();
        if (pts.Length == 0) return;
        var xs = pts.Select(x).ToArray();
        var ys = pts.Select(c => c.Stats["rfid"].Mean).ToArray();
        var sc = plt.Add.Scatter(xs, ys);
        sc.LegendText = label;
        var err = pts.Select(c => double.IsNaN(c.Stats["rfid"].Std) ? 0 : c.Stats["rfid"].Std).ToArray();
        var eb = plt.Add.ErrorBar(xs, ys, err);
        eb.Color = sc.Color;
    }

    private static void Save(ScottPlot.Plot plt, string path, string title, string xl, string yl, ScottPlot.Alignment legend = ScottPlot.Alignment.LowerRight)
    {
        plt.Title(title); plt.XLabel(xl); plt.YLabel(yl); plt.ShowLegend(legend);
        plt.Axes.Margins(0.08, 0.12); // points at the ends of an axis stay clear of the frame
        var tmp = path + ".tmp.png";
        plt.SavePng(tmp, 800, 500);
        File.Move(tmp, path, overwrite: true);
    }

    private static void PlotBits(List<Cell> cells, string path)
    {
        var plt = new ScottPlot.Plot();
        // One curve per kind and token count; the J sweep is a curve of its own (each doubling of J costs one bit of w).
        foreach (int l in cells.Select(c => c.Tokens).Distinct().Order())
        {
            AddSeries(plt, cells.Where(c => c.Kind == "vq" && c.Tokens == l), c => c.Bits, $"VQ, {l} tokens");
            AddSeries(plt, cells.Where(c => c.Kind == "mvq" && c.Tokens == l && c.J == 256), c => c.Bits, $"MVQ, {l} primary tokens (J = 256)");
        }
        AddSeries(plt, cells.Where(c => c.Kind == "mvq" && (c.Group == "j-sweep" || c.Name == "mvq-L2-K8+8")), c => c.Bits, "MVQ 8 + 8, 2 primary tokens, J = 1 ... 2048");
        Save(plt, path, "rFID against bits per instance (mean ± std over seeds)", "bits per instance (w included)", "rFID (lower is better)", ScottPlot.Alignment.UpperRight);
    }

    private static void PlotK(List<Cell> cells, string path)
    {
        var plt = new ScottPlot.Plot();
        foreach (int l in new[] { 2, 5 })
        {
            // Paper framing: VQ with K entries against MVQ with K/2 + K/2, plotted at K (total entries). Every VQ cell
            // with L tokens is a point of the VQ curve whatever its group (vq-L5-K64 is also the equal-bits partner);
            // MVQ cells other than the J sweep's (J = 256, K1 = K2) are the paper's.
            AddSeries(plt, cells.Where(c => c.Kind == "vq" && c.Tokens == l), c => Math.Log2(c.K), $"VQ, {l} tokens");
            AddSeries(plt, cells.Where(c => c.Kind == "mvq" && c.Tokens == l && c.J == 256), c => Math.Log2(2 * c.K), $"MVQ, {l} primary tokens (K/2 + K/2)");
        }
        Save(plt, path, "rFID against codebook entries K (paper framing)", "log2 K (VQ: K entries; MVQ: K/2 primary + K/2 secondary)", "rFID", ScottPlot.Alignment.UpperRight);
    }

    private static void PlotJ(List<Cell> cells, string? bench, string path)
    {
        var plt = new ScottPlot.Plot();
        var js = cells.Where(c => c.Kind == "mvq" && c.Stats.ContainsKey("rfid") && (c.Group == "j-sweep" || c.Name == "mvq-L2-K8+8")).OrderBy(c => c.J).ToArray();
        if (js.Length > 0)
        {
            var xs = js.Select(c => Math.Log2(c.J)).ToArray();
            var ys = js.Select(c => c.Stats["rfid"].Mean).ToArray();
            var sc = plt.Add.Scatter(xs, ys);
            sc.LegendText = "rFID (left axis), mvq-L2-K8+8";
            var eb = plt.Add.ErrorBar(xs, ys, js.Select(c => double.IsNaN(c.Stats["rfid"].Std) ? 0 : c.Stats["rfid"].Std).ToArray());
            eb.Color = sc.Color;
        }
        if (bench != null && File.Exists(bench) && JsonNode.Parse(File.ReadAllText(bench)) is JsonObject bo && bo["rows"] is JsonArray rows)
        {
            string benchName = bo["preset"]?.GetValue<string>() ?? "?";
            var xs = rows.Select(r => Math.Log2(r!["hypotheses"]!.GetValue<int>())).ToArray();
            var ys = rows.Select(r => r!["ms_per_step"]!.GetValue<double>()).ToArray();
            var sc = plt.Add.Scatter(xs, ys);
            sc.Axes.YAxis = plt.Axes.Right;
            sc.LegendText = $"ms per training step (right axis; mvq bench mvq, {benchName})";
            plt.Axes.Right.Label.Text = "ms per step";
        }
        Save(plt, path, "rFID and step time against J", "log2 J (hypotheses per instance; J_eval = J)", "rFID", ScottPlot.Alignment.UpperCenter);
    }

    private static void PlotLoss(JsonArray arr, string path)
    {
        var plt = new ScottPlot.Plot();
        foreach (var g in arr.Select(n => n!.AsObject()).GroupBy(o => o["name"]!.GetValue<string>()))
        {
            // Mean over seeds of the logged reconstruction loss at each logged step.
            var steps = g.First()["history"]!.AsArray().Select(h => h!["step"]!.GetValue<int>()).ToArray();
            if (steps.Length == 0) continue;
            var mean = new double[steps.Length];
            int n = 0;
            foreach (var o in g)
            {
                var h = o["history"]!.AsArray();
                if (h.Count != steps.Length) continue;
                for (int i = 0; i < steps.Length; i++) mean[i] += h[i]!["rec"]!.GetValue<double>();
                n++;
            }
            if (n == 0) continue;
            var sc = plt.Add.Scatter(steps.Select(s => (double)s).ToArray(), mean.Select(v => Math.Log10(v / n)).ToArray());
            sc.LegendText = g.Key;
            sc.MarkerSize = 0;
        }
        Save(plt, path, "Training reconstruction loss (mean over seeds)", "step", "log10 reconstruction mse (training batches)", ScottPlot.Alignment.UpperRight);
    }
}
