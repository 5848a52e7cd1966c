// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Backends.Cpu;
using MvqNative.Models;
using MvqNative.Prior;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq bench sample`: wall-clock time to generate N images per autoencoder preset, split into prior decoding
/// (KV cache) and autoencoder decoding, with images/s and time per token. Untrained weights of the preset's
/// shapes (speed does not depend on the values); one untimed run first (JIT warm-up), then the median of runs.
/// </summary>
internal static class BenchSampleCommand
{
    public static readonly string[] DefaultPresets = ["fmnist-vq", "fmnist-vq-global", "fmnist-mvq-global"];

    public static Command Create()
    {
        var presets = new Option<string[]>("--presets") { Description = "autoencoder presets", DefaultValueFactory = _ => DefaultPresets, AllowMultipleArgumentsPerToken = true };
        var count = new Option<int>("--count") { Description = "images per run", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch") { Description = "sequences decoded together", DefaultValueFactory = _ => 64 };
        var runs = new Option<int>("--runs") { Description = "timed runs (median reported)", DefaultValueFactory = _ => 3 };
        var warmup = new Option<int>("--warmup") { Description = "untimed runs first (at least)", DefaultValueFactory = _ => 2 };
        // .NET's tiered JIT promotes a method after 30 calls and a quiet spell; a few short runs leave the sampler's
        // loop in tier 0 (measured: 52 ms per 64 images after 3 warm-up runs, 15 ms after 100), so warm up in time too.
        var warmupSeconds = new Option<double>("--warmup-seconds") { Description = "untimed runs last at least this long", DefaultValueFactory = _ => 3.0 };
        var layers = new Option<int?>("--layers") { Description = "prior blocks (default: the preset's prior)" };
        var heads = new Option<int?>("--heads") { Description = "prior heads" };
        var width = new Option<int?>("--width") { Description = "prior width" };
        var device = Cli.Device(); var json = Cli.Json();
        var graphs = Cli.Switch("--cuda-graphs", "cuda: capture one decoding step as a CUDA graph and replay it per position (default on for cuda devices)");
        var cmd = new Command("sample", "Time image generation (prior decoding + autoencoder decoding) for each preset.\nExample: mvq bench sample --json")
        { presets, count, batch, runs, warmup, warmupSeconds, layers, heads, width, graphs, device, json };
        cmd.SetAction(r =>
        {
            int n = r.GetValue(count), bs = r.GetValue(batch), nr = Math.Max(1, r.GetValue(runs));
            if (n < 1 || bs < 1) throw new MvqUsageException("--count and --batch must be >= 1");
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            var cuda = backend as MvqNative.Backends.Cuda.CudaBackend;
            if (cuda is null && r.GetValue(graphs) == "on") throw new MvqUsageException("--cuda-graphs on needs a cuda device");
            bool useGraphs = Cli.On(r.GetValue(graphs), cuda is not null);
            var rows = new JsonArray();
            var opt = new SamplingOptions();
            foreach (var name in r.GetValue(presets)!)
            {
                var preset = Presets.Get(name);
                var (pc, _) = PriorConfig.DefaultFor(preset.Model);
                if (r.GetValue(layers) is int l) pc.Layers = l;
                if (r.GetValue(heads) is int h) pc.Heads = h;
                if (r.GetValue(width) is int w) pc.Width = w;
                pc.Validate();
                using var ae = new Autoencoder(backend, preset.Model, seed: 1);
                using var prior = new TransformerPrior(backend, pc, new CodeLayout(ae.Bottleneck.Segments), seed: 1);
                // One sampler for the whole benchmark, as a program that samples repeatedly keeps one: on the CPU it
                // packs the weights once (its first run, a warm-up run; reported as prior_pack_ms).
                using var sampler = new PriorSampler(prior, cudaGraphs: useGraphs);
                var clock = System.Diagnostics.Stopwatch.StartNew();
                int warmed = 0;
                while (warmed < r.GetValue(warmup) || clock.Elapsed.TotalSeconds < r.GetValue(warmupSeconds)) { ImageGenerator.Run(ae, prior, n, bs, opt, sampler: sampler); warmed++; }
                var runCounts = new MvqNative.Backends.Cuda.CudaCounts();
                var stepCounts = new MvqNative.Backends.Cuda.CudaCounts();
                int countedSteps = 0;
                var res = Enumerable.Range(0, nr).Select(_ =>
                {
                    var g = ImageGenerator.Run(ae, prior, n, bs, opt, sampler: sampler);
                    runCounts += sampler.RunCounts; stepCounts += sampler.StepCounts; countedSteps += sampler.CountedSteps;
                    return g;
                }).ToList();
                double priorMs = Median(res.Select(x => x.PriorMs)), decodeMs = Median(res.Select(x => x.DecodeMs));
                double totalMs = Median(res.Select(x => x.PriorMs + x.DecodeMs));
                int t = prior.Layout.Length;
                var row = new JsonObject
                {
                    ["preset"] = name, ["tokens_per_image"] = t, ["count"] = n, ["batch"] = bs, ["runs"] = nr, ["warmup_runs"] = warmed,
                    ["prior_ms"] = Math.Round(priorMs, 2), ["prior_cpu_ms"] = Math.Round(Median(res.Select(x => x.PriorCpuMs)), 3), ["decode_ms"] = Math.Round(decodeMs, 2), ["total_ms"] = Math.Round(totalMs, 2),
                    ["images_per_s"] = Math.Round(n * 1000 / totalMs, 1), ["prior_images_per_s"] = Math.Round(n * 1000 / priorMs, 1),
                    ["prior_us_per_token"] = Math.Round(priorMs * 1000 / ((double)n * t), 3),
                    ["prior_ms_per_step"] = Math.Round(priorMs / (Math.Ceiling((double)n / bs) * t), 4),
                    ["prior_pack_ms"] = Math.Round(sampler.PackMilliseconds, 3),
                    ["prior_parameters"] = prior.ParameterCount, ["prior"] = JsonNode.Parse(pc.ToJson()),
                };
                if (cuda is not null)
                {
                    // What the prior's sampling asks of the driver (CudaBackend.Counters, timed runs only): per decoding step
                    // after the first of each batch (the replayed or eager step alone), and per sampled token over whole runs
                    // (setup uploads, the first eager step, the steps and the one copy of the codes back).
                    row["cuda_graphs"] = useGraphs; row["graph_nodes"] = sampler.GraphNodes;
                    var perStep = new JsonObject(); var perToken = new JsonObject();
                    foreach (var (k, v) in stepCounts.Fields()) perStep[k] = countedSteps == 0 ? 0 : Math.Round((double)v / countedSteps, 3);
                    foreach (var (k, v) in runCounts.Fields()) perToken[k] = Math.Round((double)v / ((double)n * t * nr), 4);
                    row["cuda_per_step"] = perStep; row["cuda_per_token"] = perToken;
                }
                if (PriorSampler.Profiling)
                {
                    // MVQ_SAMPLE_PROFILE=1: median milliseconds per prior step of each op kind (the timer calls add a little).
                    var prof = new JsonObject();
                    double steps = Math.Ceiling((double)n / bs) * t;
                    for (int k = 0; k < PriorSampler.ProfileNames.Length; k++)
                        prof[PriorSampler.ProfileNames[k]] = Math.Round(Median(res.Select(x => x.PriorProfile![k])) / steps, 4);
                    row["profile_ms_per_step"] = prof;
                }
                rows.Add(row);
            }
            var o = new JsonObject { ["device"] = backend.Name, ["threads"] = CpuParallel.Threads, ["rows"] = rows, ["speedups"] = Speedups(rows) };
            if (r.GetValue(json)) Cli.PrintJson(o);
            else
            {
                var tb = new Table().AddColumns("preset", "tokens", "prior ms", "decode ms", "images/s", "us/token (prior)");
                foreach (var x in rows)
                    tb.AddRow(x!["preset"]!.ToString(), x["tokens_per_image"]!.ToString(), x["prior_ms"]!.ToString(), x["decode_ms"]!.ToString(), x["images_per_s"]!.ToString(), x["prior_us_per_token"]!.ToString());
                AnsiConsole.Write(tb);
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>images/s of each MVQ preset over each VQ preset in the run.</summary>
    private static JsonArray Speedups(JsonArray rows)
    {
        var a = new JsonArray();
        foreach (var m in rows.Where(x => x!["preset"]!.ToString().Contains("mvq", StringComparison.Ordinal)))
            foreach (var v in rows.Where(x => !x!["preset"]!.ToString().Contains("mvq", StringComparison.Ordinal)))
                a.Add(new JsonObject
                {
                    ["mvq"] = m!["preset"]!.ToString(), ["vq"] = v!["preset"]!.ToString(),
                    ["images_per_s_ratio"] = Math.Round(m["images_per_s"]!.GetValue<double>() / v["images_per_s"]!.GetValue<double>(), 2),
                    ["prior_time_ratio"] = Math.Round(v["prior_ms"]!.GetValue<double>() / m["prior_ms"]!.GetValue<double>(), 2),
                });
        return a;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.OrderBy(x => x).ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : 0.5 * (a[a.Length / 2 - 1] + a[a.Length / 2]);
    }
}
