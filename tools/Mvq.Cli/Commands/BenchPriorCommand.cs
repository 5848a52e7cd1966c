// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Backends.Cpu;
using MvqNative.Models;
using MvqNative.Prior;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq bench prior`: full prior training steps (forward, masked cross-entropy, backward, clipped AdamW) on random
/// codes of a preset's layout with its default prior; median step time after an untimed warm-up (the statistic
/// tools/reference/prior_reference.py bench-train reports).
/// </summary>
internal static class BenchPriorCommand
{
    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "autoencoder preset (its code layout)", DefaultValueFactory = _ => "fmnist-vq" };
        var batch = new Option<int?>("--batch") { Description = "sequences per step (default: the preset's prior recipe)" };
        var steps = new Option<int>("--steps") { Description = "timed steps", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first (the JIT needs tens)", DefaultValueFactory = _ => 40 };
        var device = Cli.Device(); var json = Cli.Json();
        var cmd = new Command("prior", "Time prior training steps on random codes of a preset's layout.\nExample: mvq bench prior --preset fmnist-vq --json")
        { preset, batch, steps, warmup, device, json };
        cmd.SetAction(r =>
        {
            var p = Presets.Get(r.GetValue(preset)!);
            var (pc, tc) = PriorConfig.DefaultFor(p.Model);
            if (r.GetValue(batch) is int b) tc.Batch = b;
            int n = Math.Max(1, r.GetValue(steps)), w = Math.Max(0, r.GetValue(warmup));
            tc.Steps = n + w; tc.LogEvery = int.MaxValue;
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var ae = new Autoencoder(backend, p.Model, seed: 1);
            var layout = new CodeLayout(ae.Bottleneck.Segments);
            var rng = new Random(1);
            var codes = new int[Math.Max(tc.Batch, 1024) * layout.Length];
            for (int i = 0; i < codes.Length; i++) { var (lo, hi) = layout.Bounds(i % layout.Length); codes[i] = rng.Next(hi - lo); }
            using var prior = new TransformerPrior(backend, pc, layout, seed: 1);
            using var trainer = new PriorTrainer(backend, prior, tc, codes);
            for (int i = 0; i < w; i++) trainer.TrainStep();
            backend.Synchronize();
            var ms = new double[n];
            for (int i = 0; i < n; i++)
            {
                var sw = System.Diagnostics.Stopwatch.StartNew();
                trainer.TrainStep();
                backend.Synchronize();
                ms[i] = sw.Elapsed.TotalMilliseconds;
            }
            var sorted = ms.OrderBy(x => x).ToArray();
            double med = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
            var o = new JsonObject
            {
                ["device"] = backend.Name, ["preset"] = p.Name, ["batch"] = tc.Batch, ["threads"] = CpuParallel.Threads,
                ["tokens_per_image"] = layout.Length, ["steps"] = n, ["warmup"] = w, ["ms_per_step"] = Math.Round(med, 4),
                ["images_per_s"] = Math.Round(tc.Batch * 1000 / med, 2), ["tokens_per_s"] = Math.Round(tc.Batch * layout.Length * 1000 / med, 1),
                ["step_ms"] = new JsonArray(ms.Select(x => (JsonNode)Math.Round(x, 3)).ToArray()), ["prior"] = JsonNode.Parse(pc.ToJson()),
            };
            if (r.GetValue(json)) Cli.PrintJson(o);
            else Console.WriteLine($"prior over {p.Name} codes on {backend.Name}, batch {tc.Batch}, {CpuParallel.Threads} threads: {med:F1} ms/step (median of {n}), {tc.Batch * 1000 / med:F0} images/s");
            return 0;
        });
        return cmd;
    }
}
