// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative;
using MvqNative.Backends.Cpu;
using MvqNative.Benchmarks;
using MvqNative.Models;
using MvqNative.Training;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq bench gemm|train|kernels|mvq|prior-ops|sample|prior|api`: figures printed as JSON or a table; never a pass/fail.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Benchmarks (print figures; they never fail).");
        cmd.Subcommands.Add(Gemm());
        cmd.Subcommands.Add(Train());
        cmd.Subcommands.Add(Kernels());
        cmd.Subcommands.Add(Mvq());
        cmd.Subcommands.Add(PriorOps());
        cmd.Subcommands.Add(BenchSampleCommand.Create());
        cmd.Subcommands.Add(BenchPriorCommand.Create());
        cmd.Subcommands.Add(BenchApiCommand.Create());
        return cmd;
    }

    private static Command Gemm()
    {
        var sizes = new Option<int[]>("--sizes") { Description = "square sizes", DefaultValueFactory = _ => [256, 512, 1024, 2048], AllowMultipleArgumentsPerToken = true };
        var repeats = new Option<int>("--repeats") { Description = "timed runs per size (median reported)", DefaultValueFactory = _ => 5 };
        var json = Cli.Json();
        var cmd = new Command("gemm", "Our SGEMM against OpenBLAS cblas_sgemm, GFLOP/s side by side.\nExample: mvq bench gemm --json") { sizes, repeats, json };
        cmd.SetAction(r =>
        {
            var rows = GemmBench.Run(r.GetValue(sizes)!, Math.Max(1, r.GetValue(repeats)), r.GetValue(json) ? null : Console.WriteLine);
            var o = new JsonObject
            {
                ["threads"] = CpuParallel.Threads,
                ["provider"] = CpuGemm.ProviderDescription,
                ["openblas"] = SystemBlas.IsAvailable ? SystemBlas.LibraryPath : null,
                ["rows"] = new JsonArray(rows.Select(x => (JsonNode)new JsonObject
                {
                    ["size"] = x.Size, ["ours_gflops"] = x.OursGflops, ["openblas_gflops"] = x.OpenBlasGflops, ["ratio"] = x.Ratio,
                }).ToArray()),
            };
            if (r.GetValue(json)) Cli.PrintJson(o);
            else
            {
                var t = new Table().AddColumns("size", "ours GFLOP/s", "OpenBLAS GFLOP/s", "ours / OpenBLAS");
                foreach (var x in rows) t.AddRow(x.Size.ToString(), x.OursGflops.ToString("F1"), x.OpenBlasGflops?.ToString("F1") ?? "-", x.Ratio?.ToString("P0") ?? "-");
                AnsiConsole.Write(t);
            }
            return 0;
        });
        return cmd;
    }

    private static Command Train()
    {
        var preset = new Option<string>("--preset") { Description = "model preset", DefaultValueFactory = _ => "fmnist-vq" };
        var batch = new Option<int?>("--batch") { Description = "images per step (default: the preset's)" };
        var steps = new Option<int>("--steps") { Description = "timed steps", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first", DefaultValueFactory = _ => 3 };
        var hyp = new Option<int?>("--hypotheses") { Description = "override J (MVQ)" };
        var lr = new Option<float?>("--lr") { Description = "override the peak learning rate (large batches: see docs/perf/gpu-throughput.md)" };
        var deviceData = Cli.Switch("--device-data", "cuda: dataset uploaded once, batches, masks and AdamW scalars made on the device (default on for cuda devices)");
        var graphs = Cli.Switch("--cuda-graphs", "cuda: capture the step once as a CUDA graph and replay it (default on for cuda devices; needs --device-data)");
        var tf32 = Cli.Switch("--tf32", "cuda: cuBLAS GEMMs with TF32 tensor-op math (default off)");
        var opTimes = new Option<int>("--op-times") { Description = "after the timed steps, run N more with a stopwatch around every op and report ms per step per op (cpu: ops are synchronous)", DefaultValueFactory = _ => 0 };
        var device = Cli.Device(); var json = Cli.Json();
        var cmd = new Command("train", "Time full training steps (forward, backward, AdamW) on synthetic data of the preset's shape. On cuda devices also counts kernel launches, cuBLAS calls, copies, synchronisations and allocations per step.\nExample: mvq bench train --device cpu --preset fmnist-vq --json")
        { preset, batch, steps, warmup, hyp, lr, deviceData, graphs, tf32, opTimes, device, json };
        cmd.SetAction(r =>
        {
            var p = Presets.Get(r.GetValue(preset)!);
            if (r.GetValue(batch) is int b) p.Train.Batch = b;
            if (r.GetValue(hyp) is int j && p.Model.Mvq != null) { p.Model.Mvq.Hypotheses = j; p.Model.Mvq.Chunk = Math.Min(p.Model.Mvq.Chunk, j); }
            if (r.GetValue(lr) is float l) p.Train.Lr = l;
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            bool onCuda = backend is MvqNative.Backends.Cuda.CudaBackend;
            bool onDevice = Cli.On(r.GetValue(deviceData), onCuda);
            // On cuda, data not on the device is staged through pinned host buffers (double-buffered async copies).
            var options = new TrainerOptions(onDevice, Cli.On(r.GetValue(graphs), onCuda), PinnedData: onCuda && !onDevice);
            if (backend is MvqNative.Backends.Cuda.CudaBackend cb) cb.Tf32 = Cli.On(r.GetValue(tf32), false);
            else if (Cli.On(r.GetValue(tf32), false)) throw new MvqUsageException("--tf32 on needs a cuda device");
            var res = TrainBench.Run(backend, p, r.GetValue(steps), r.GetValue(warmup), options, r.GetValue(opTimes));
            var o = new JsonObject
            {
                ["device"] = backend.Name, ["preset"] = p.Name, ["batch"] = p.Train.Batch, ["threads"] = CpuParallel.Threads,
                ["steps"] = res.Steps, ["ms_per_step"] = res.MedianMs, ["images_per_s"] = res.ImagesPerSecond,
                ["step_ms"] = new JsonArray(res.StepMs.Select(x => (JsonNode)x).ToArray()),
                ["ms_per_step_mean"] = res.MeanMs,
                ["cpu_ms_per_step"] = res.CpuMsPerStep,
                ["gc_collections_gen0_1_2"] = new JsonArray((res.Collections ?? []).Select(x => (JsonNode)x).ToArray()),
                ["gc_pause_ms"] = res.GcPauseMs, ["allocated_bytes_per_step"] = res.AllocatedBytesPerStep,
                ["steps_with_gc"] = new JsonArray((res.StepsWithGc ?? []).Select(x => (JsonNode)x).ToArray()),
                ["gc"] = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation",
                ["tiered_pgo"] = AppContext.GetData("System.Runtime.TieredPGO")?.ToString(),
            };
            foreach (var (k, v) in res.Sections) o["share_" + k] = v;
            o["lr"] = p.Train.Lr;
            o["device_data"] = options.DeviceData;
            o["pinned_data"] = onCuda && !options.DeviceData;
            if (res.Counts is { } c)
            {
                o["cuda_graphs"] = c.CudaGraphs; o["tf32"] = c.Tf32; o["graph_nodes"] = c.GraphNodes;
                var per = new JsonObject();
                foreach (var (k, v) in c.Mean) per[k] = v;
                o["per_step"] = per;
                var mx = new JsonObject();
                foreach (var (k, v) in c.Max) mx[k] = v;
                o["per_step_max"] = mx;
                if (c.EmulatorLaunchesPerStep is double e) o["emulator_launches_per_step"] = e;
            }
            if (res.Ops is { } ops)
            {
                var rows = new JsonArray();
                foreach (var (op, ms, calls, min) in ops.Rows) rows.Add(new JsonObject { ["op"] = op, ["ms_per_step"] = ms, ["calls_per_step"] = calls, ["fastest_call_ms"] = min });
                o["op_times"] = new JsonObject { ["steps"] = ops.Steps, ["step_ms"] = ops.StepMs, ["outside_ops_ms"] = ops.StepMs - ops.Rows.Sum(x => x.MsPerStep), ["ops"] = rows };
            }
            if (r.GetValue(json)) Cli.PrintJson(o);
            else
            {
                if (res.Ops is { } ot)
                {
                    Console.WriteLine($"op times over {ot.Steps} extra steps ({ot.StepMs:F2} ms/step):");
                    foreach (var (op, ms, calls, min) in ot.Rows) Console.WriteLine($"  {op,-32} {ms,8:F3} ms {100 * ms / ot.StepMs,5:F1}%  {calls,5:0.#} calls, fastest {min:F3} ms");
                    Console.WriteLine($"  {"(outside ops)",-32} {ot.StepMs - ot.Rows.Sum(x => x.MsPerStep),8:F3} ms");
                }
                Console.WriteLine($"{p.Name} on {backend.Name}, batch {p.Train.Batch}, {CpuParallel.Threads} threads: {res.MedianMs:F1} ms/step (median of {res.Steps}), {res.ImagesPerSecond:F0} images/s");
                if (res.Counts is { } cn)
                    Console.WriteLine("per step (mean): " + string.Join(", ", cn.Mean.Select(kv => $"{kv.Key} {kv.Value:0.##}")) +
                        (cn.EmulatorLaunchesPerStep is double e ? $"; kernels run by the emulator {e:0.##}" : "") + $"; graphs {(cn.CudaGraphs ? "on" : "off")}, device data {(cn.DeviceData ? "on" : "off")}");
            }
            return 0;
        });
        return cmd;
    }

    private static Command Kernels()
    {
        var repeats = new Option<int>("--repeats") { Description = "timed samples per kernel (median reported)", DefaultValueFactory = _ => 20 };
        var warmup = new Option<int>("--warmup") { Description = "untimed calls first", DefaultValueFactory = _ => 3 };
        var batch = new Option<int?>("--batch") { Description = "override B of every config (small values for cuda-emu)" };
        var hyps = new Option<int?>("--hypotheses") { Description = "override J of every config (small values for cuda-emu; which mvq_score kernel runs does not depend on J)" };
        var configs = new Option<string[]>("--config") { Description = "only these configs (fmnist-mvq-global, rgb64-grid, rgb128-grid)", AllowMultipleArgumentsPerToken = true };
        var device = Cli.Device(); var json = Cli.Json();
        var cmd = new Command("kernels",
            "Median time of the fused kernels (vq_lookup, mvq_hidden_stats, mvq_score) and a calibration GEMM (linear_forward) against the floor counted from the shapes (bytes moved, flops) and the card's peak figures.\n" +
            "Example: mvq bench kernels --device cuda --json")
        { repeats, warmup, batch, hyps, configs, device, json };
        cmd.SetAction(r =>
        {
            var all = KernelBenchConfig.Defaults(r.GetValue(batch));
            if (r.GetValue(hyps) is int j)
            {
                if (j < 1) throw new MvqUsageException($"--hypotheses: {j} is not a positive count");
                all = all.Select(c => c with { J = j }).ToList();
            }
            var names = r.GetValue(configs) ?? [];
            var chosen = names.Length == 0 ? all : all.Where(c => names.Contains(c.Name, StringComparer.OrdinalIgnoreCase)).ToList();
            if (chosen.Count == 0) throw new MvqUsageException($"--config: unknown ({string.Join(", ", names)}); known: {string.Join(", ", all.Select(c => c.Name))}");
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            var res = KernelBench.Run(backend, chosen, Math.Max(1, r.GetValue(repeats)), Math.Max(0, r.GetValue(warmup)));
            if (r.GetValue(json)) Cli.PrintJson(KernelsJson(res, chosen));
            else
            {
                Console.WriteLine($"{res.Device} ({res.DeviceName}), timing: {res.Timing}, peaks: {(res.Peak is { } p ? $"{p.BandwidthGBs} GB/s, {p.Fp32Tflops} TFLOP/s FP32" : "n/a")}");
                var t = new Table().AddColumns("config", "kernel", "median ms", "GB/s", "GFLOP/s", "floor ms", "of floor", "variant");
                foreach (var x in res.Rows)
                    t.AddRow(x.Config, x.Kernel, x.MedianMs?.ToString("F4") ?? "-", x.AchievedGBs?.ToString("F1") ?? "-", x.AchievedGflops?.ToString("F1") ?? "-",
                        x.FloorMs?.ToString("F4") ?? "-", x.FractionOfFloor?.ToString("P1") ?? Markup.Escape(x.Note ?? "-"),
                        x.Variant is null ? "-" : Markup.Escape(x.Fallback == true ? $"FALLBACK {x.Variant}" : x.Variant));
                AnsiConsole.Write(t);
            }
            return 0;
        });
        return cmd;
    }

    private static JsonObject KernelsJson(KernelBenchResult res, IReadOnlyList<KernelBenchConfig> configs) => new()
    {
        ["device"] = res.Device,
        ["device_name"] = res.DeviceName,
        ["timing"] = res.Timing,
        ["peak_bandwidth_gbs"] = res.Peak?.BandwidthGBs,
        ["peak_fp32_tflops"] = res.Peak?.Fp32Tflops,
        ["peak_source"] = res.Peak?.Source,
        ["floor_formula"] = "floor_ms = max(bytes / peak_bandwidth, flops / peak_fp32) in ms; fraction_of_floor = floor_ms / median_ms",
        ["configs"] = new JsonArray(configs.Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Name, ["B"] = c.B, ["L1"] = c.L1, ["L2"] = c.L2, ["D1"] = c.D1, ["D2"] = c.D2, ["K"] = c.K, ["J"] = c.J, ["F"] = c.F,
            ["identity_mix"] = c.IdentityMix, ["image"] = $"{c.Channels}x{c.Height}x{c.Width}",
        }).ToArray()),
        ["rows"] = new JsonArray(res.Rows.Select(x => (JsonNode)new JsonObject
        {
            ["config"] = x.Config, ["kernel"] = x.Kernel, ["shape"] = x.Shape,
            ["median_ms"] = x.MedianMs, ["samples"] = x.Samples,
            ["bytes"] = x.Bytes, ["flops"] = x.Flops, ["bytes_formula"] = x.BytesFormula, ["flops_formula"] = x.FlopsFormula,
            ["achieved_gbs"] = x.AchievedGBs, ["achieved_gflops"] = x.AchievedGflops,
            ["floor_ms"] = x.FloorMs, ["fraction_of_floor"] = x.FractionOfFloor, ["note"] = x.Note,
            ["variant"] = x.Variant, ["fallback"] = x.Fallback,
        }).ToArray()),
    };

    private static Command Mvq()
    {
        var preset = new Option<string>("--preset") { Description = "MVQ model preset", DefaultValueFactory = _ => "fmnist-mvq-global" };
        var config = new Option<FileInfo?>("--config") { Description = "model config JSON (as for mvq train --config, e.g. a sweep cell's config.json) instead of the preset" };
        var hyps = new Option<int[]>("--hypotheses") { Description = "values of J", DefaultValueFactory = _ => [1, 16, 256, 2048], AllowMultipleArgumentsPerToken = true };
        var batch = new Option<int?>("--batch") { Description = "images per step (default: the preset's)" };
        var steps = new Option<int>("--steps") { Description = "timed steps per J (median reported)", DefaultValueFactory = _ => 5 };
        var warmup = new Option<int>("--warmup") { Description = "untimed steps first", DefaultValueFactory = _ => 2 };
        var device = Cli.Device(); var json = Cli.Json();
        var cmd = new Command("mvq", "Time MVQ training steps against J, the hypotheses per instance, with the share spent in the bottleneck (forward + backward) and in its parts: mask generation, hidden statistics, scoring, winner path (forward), backward.\nExample: mvq bench mvq --json\n         mvq bench mvq --config runs/sweep/mvq-L2-K8+8-s1/config.json --hypotheses 1 2 8 32 256 2048")
        { preset, config, hyps, batch, steps, warmup, device, json };
        cmd.SetAction(r =>
        {
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            var rows = new JsonArray();
            var table = new Table().AddColumns("J", "ms/step", "images/s", "bottleneck share", "bottleneck fwd", "masks", "statistics", "scoring", "winner path", "bottleneck bwd");
            string name = ""; int b0 = 0;
            // An untimed throwaway model first: the first model built in a process would otherwise pay for JIT warm-up.
            var cfg = r.GetValue(config);
            if (cfg is { Exists: false }) throw new MvqInputException(cfg.FullName, "config file not found");
            // The preset, or a config file resolved exactly as `mvq train --config FILE` resolves it (defaults, then the
            // file), so a sweep cell's config.json times the model that cell trained.
            Preset Load()
            {
                var p = Presets.Get(r.GetValue(preset)!);
                if (cfg is null) return p;
                var (m, t) = TrainCommand.Resolve(null, cfg);
                return p with { Name = Path.GetFileName(Path.GetDirectoryName(cfg.FullName)) ?? cfg.Name, Model = m, Train = t };
            }
            var warm = Load();
            if (warm.Model.Mvq is not null) { warm.Model.Mvq.Hypotheses = 16; warm.Model.Mvq.Chunk = 16; TrainBench.Run(backend, warm, 2, 3); }
            foreach (int j in r.GetValue(hyps)!)
            {
                if (j < 1) throw new MvqUsageException($"--hypotheses values must be >= 1, got {j}");
                var p = Load();
                if (p.Model.Mvq is null) throw new MvqUsageException($"'{p.Name}' is not an MVQ model");
                if (r.GetValue(batch) is int b) p.Train.Batch = b;
                p.Model.Mvq.Hypotheses = j;
                p.Model.Mvq.Chunk = Math.Min(p.Model.Mvq.Chunk, j);
                name = p.Name; b0 = p.Train.Batch;
                var res = TrainBench.Run(backend, p, Math.Max(1, r.GetValue(steps)), Math.Max(0, r.GetValue(warmup)));
                double fwd = res.Sections.GetValueOrDefault("bottleneck_forward"), bwd = res.Sections.GetValueOrDefault("bottleneck_backward");
                var row = new JsonObject
                {
                    ["hypotheses"] = j, ["chunk"] = p.Model.Mvq.Chunk, ["ms_per_step"] = res.MedianMs, ["images_per_s"] = res.ImagesPerSecond,
                    ["bottleneck_share"] = fwd + bwd, ["share_bottleneck_forward"] = fwd, ["share_bottleneck_backward"] = bwd,
                    ["step_ms"] = new JsonArray(res.StepMs.Select(x => (JsonNode)x).ToArray()),
                };
                foreach (var (k, v) in res.Sections) row["share_" + k] = v;
                rows.Add(row);
                string Share(string k) => res.Sections.GetValueOrDefault(k).ToString("P1");
                table.AddRow(j.ToString(), res.MedianMs.ToString("F1"), res.ImagesPerSecond.ToString("F0"), (fwd + bwd).ToString("P0"), fwd.ToString("P0"),
                    Share("mvq_masks"), Share("mvq_stats"), Share("mvq_score"), Share("mvq_winner"), bwd.ToString("P0"));
                if (!r.GetValue(json)) Console.Error.WriteLine($"J={j}: {res.MedianMs:F1} ms/step");
            }
            var o = new JsonObject
            {
                ["device"] = backend.Name, ["preset"] = name, ["config"] = cfg?.FullName, ["batch"] = b0, ["threads"] = CpuParallel.Threads,
                ["steps"] = Math.Max(1, r.GetValue(steps)), ["rows"] = rows,
            };
            if (r.GetValue(json)) Cli.PrintJson(o);
            else
            {
                Console.WriteLine($"{name} on {backend.Name}, batch {b0}, {CpuParallel.Threads} threads, median of {Math.Max(1, r.GetValue(steps))} steps; shares from 3 extra synchronised steps");
                AnsiConsole.Write(table);
            }
            return 0;
        });
        return cmd;
    }

    private static Command PriorOps()
    {
        var b = new Option<int>("--batch") { Description = "sequences", DefaultValueFactory = _ => 32 };
        var t = new Option<int>("--tokens") { Description = "sequence length T", DefaultValueFactory = _ => 49 };
        var c = new Option<int>("--width") { Description = "model width C", DefaultValueFactory = _ => 128 };
        var h = new Option<int>("--heads") { Description = "heads H", DefaultValueFactory = _ => 4 };
        var v = new Option<int>("--vocab") { Description = "logit columns V", DefaultValueFactory = _ => 128 };
        var warmup = new Option<int>("--warmup") { Description = "untimed calls per op first", DefaultValueFactory = _ => 50 };
        var runs = new Option<int>("--runs") { Description = "timed calls per op (median reported)", DefaultValueFactory = _ => 50 };
        var clock = new Option<string>("--clock") { Description = "wall (default) or process (CPU time of the process: use with MVQ_THREADS=1 on a loaded machine)", DefaultValueFactory = _ => "wall" };
        clock.AcceptOnlyFromAmong("wall", "process");
        var device = Cli.Device(); var json = Cli.Json();
        var cmd = new Command("prior-ops", "Median ms of the prior's ops (forward + backward pairs, the decode step) at a prior's shapes.\nExample: mvq bench prior-ops --batch 32 --tokens 49 --json")
        { b, t, c, h, v, warmup, runs, clock, device, json };
        cmd.SetAction(r =>
        {
            var shape = new PriorOpsShape(r.GetValue(b), r.GetValue(t), r.GetValue(c), r.GetValue(h), r.GetValue(v));
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            var rows = PriorOpsBench.Run(backend, shape, Math.Max(0, r.GetValue(warmup)), Math.Max(1, r.GetValue(runs)), r.GetValue(clock) == "process");
            var o = new JsonObject
            {
                ["device"] = backend.Name, ["threads"] = CpuParallel.Threads, ["clock"] = r.GetValue(clock),
                ["batch"] = shape.B, ["tokens"] = shape.T, ["width"] = shape.C, ["heads"] = shape.H, ["vocab"] = shape.V,
                ["ms"] = new JsonObject(rows.Select(x => KeyValuePair.Create(x.Op, (JsonNode?)Math.Round(x.MedianMs, 4)))),
            };
            if (r.GetValue(json)) Cli.PrintJson(o);
            else
            {
                var tab = new Table().AddColumns("op (fwd+bwd)", "median ms");
                foreach (var x in rows) tab.AddRow(x.Op, x.MedianMs.ToString("F3"));
                AnsiConsole.Write(tab);
            }
            return 0;
        });
        return cmd;
    }
}
