// A user command whose model work runs on the facade (MvqModel.Create/TrainCore/Evaluate/Reconstruct); still internal (docs/api.md):
// config resolution and checks, resuming a checkpoint with its optimiser state, the CUDA switches, profiler steps, the step log.
using System.CommandLine;
using System.Text.Json.Nodes;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.IO;
using MvqNative.Imaging;
using MvqNative.Models;
using MvqNative.Training;
using Spectre.Console;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq train`: trains a preset or config and writes model.safetensors, metrics.json, reconstructions.png, loss.png.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = "built-in recipe: " + string.Join(", ", Presets.Names) };
        var config = new Option<FileInfo?>("--config") { Description = "JSON file {\"model\": {...}, \"train\": {...}} (overrides the preset's sections it names)" };
        var data = new Option<string>("--data") { Description = "fashion-mnist[:train|:test] | folder:PATH | idx:PATH", DefaultValueFactory = _ => "fashion-mnist:train" };
        var output = new Option<DirectoryInfo>("--out") { Description = "output folder", Required = true };
        var steps = new Option<int?>("--steps") { Description = "training steps" };
        var batch = new Option<int?>("--batch") { Description = "images per step" };
        var lr = new Option<float?>("--lr") { Description = "peak learning rate" };
        var limit = new Option<int?>("--limit") { Description = "use only the first N images of the dataset" };
        var resume = new Option<FileInfo?>("--resume") { Description = "continue from a checkpoint written by mvq train (its model config is used when no --preset or --config is given)" };
        var force = new Option<bool>("--force") { Description = "replace a model already in --out (without it, an existing model is kept and the run refused)" };
        var profile = new Option<string?>("--profile-steps") { Description = "A:B: bracket steps A..B with profiler start/stop (Nsight)" };
        var deviceData = Cli.Switch("--device-data", "cuda: dataset uploaded once, batches (in a counter-based order), MVQ masks and AdamW scalars made on the device (default on for cuda devices)");
        var graphs = Cli.Switch("--cuda-graphs", "cuda: capture the step once as a CUDA graph and replay it (default on for cuda devices; needs --device-data; off shows per-section NVTX ranges in a profile)");
        var tf32 = Cli.Switch("--tf32", "cuda: cuBLAS GEMMs with TF32 tensor-op math (default off)");
        var device = Cli.Device(); var seed = Cli.Seed(); var json = Cli.Json(); var convert = Cli.Convert();
        var cmd = new Command("train", "Train a VQ-VAE or MVQ autoencoder.\nExample: mvq train --preset fmnist-vq --data fashion-mnist:train --out runs/vq")
        { preset, config, data, output, steps, batch, lr, limit, resume, force, convert, profile, deviceData, graphs, tf32, device, seed, json };
        cmd.SetAction(r =>
        {
            var resumePath = r.GetValue(resume)?.FullName;
            var outDir = r.GetValue(output)!.FullName;
            // The output folder first: locked for this run and proven writable before any data is read.
            using var folder = OutputFolder.Acquire(outDir, "mvq train");
            var ckpt = folder.File("model.safetensors");
            if (File.Exists(ckpt) && resumePath is null && !r.GetValue(force))
                throw new MvqInputException(ckpt, "a model is already there; pass --resume with it to continue it, or --force to replace it");
            SafeTensorsContent? resumeFile = null;
            ModelConfig? resumeModel = null;
            TrainConfig? resumeTrain = null;
            if (resumePath is not null)
            {
                resumeFile = ModelCheckpoint.ReadFile(resumePath);
                resumeModel = ModelCheckpoint.ReadConfig(resumeFile, resumePath);
                resumeTrain = ModelCheckpoint.ReadTrainConfig(resumeFile, resumePath);
                ModelCheckpoint.CheckBeforeBuilding(resumeFile, resumeModel, resumePath);
            }
            ModelConfig model; TrainConfig train;
            if (resumeModel is not null && r.GetValue(preset) is null && r.GetValue(config) is null)
                (model, train) = (resumeModel, resumeTrain ?? new TrainConfig());
            else
                (model, train) = Resolve(r.GetValue(preset), r.GetValue(config));
            if (resumeModel is not null)
            {
                var changed = ConfigDiff.Describe(resumeModel.ToJson(), model.ToJson());
                if (changed.Length > 0)
                    throw new MvqInputException(resumePath!, $"the checkpoint's model config differs from the one given ({changed}); resume without --preset/--config to use the checkpoint's, or train a new model");
            }
            // Flags are named in their own messages; the config's values by their keys (ConfigChecks).
            if (r.GetValue(steps) is int s) train.Steps = s >= 1 ? s : throw new MvqUsageException($"--steps must be >= 1, got {s}");
            if (r.GetValue(batch) is int b) train.Batch = b is >= 1 and <= ConfigChecks.MaxBatch ? b : throw new MvqUsageException($"--batch must be from 1 to {ConfigChecks.MaxBatch}, got {b}");
            if (r.GetValue(lr) is float l) train.Lr = float.IsFinite(l) && l > 0 ? l : throw new MvqUsageException($"--lr must be a finite number > 0, got {l}");
            if (r.GetValue(seed) is int sd) train.Seed = sd;
            ConfigChecks.Check(train);
            string? trainChanges = resumeTrain is null ? null : ConfigDiff.Describe(resumeTrain.ToJson(), train.ToJson());
            if (r.GetValue(limit) is < 1) throw new MvqUsageException($"--limit must be >= 1, got {r.GetValue(limit)}");
            bool conv = Cli.ConvertFlag(r.GetValue(convert), model.Image.Channels);
            string source = r.GetValue(config)?.FullName ?? resumePath ?? "--preset " + (r.GetValue(preset) ?? "fmnist-vq");
            return Run(model, train, source, r.GetValue(data)!, conv, folder, r.GetValue(device)!, r.GetValue(limit), resumePath, resumeFile, trainChanges, r.GetValue(json), r.GetValue(profile),
                (r.GetValue(deviceData), r.GetValue(graphs), r.GetValue(tf32)));
        });
        return cmd;
    }

    internal static (ModelConfig, TrainConfig) Resolve(string? preset, FileInfo? config)
    {
        if (preset is null && config is null) preset = "fmnist-vq";
        var p = preset is null ? null : Presets.Get(preset);
        var model = p?.Model ?? new ModelConfig();
        var train = p?.Train ?? new TrainConfig();
        if (config is not null)
        {
            var text = MvqNative.IO.InputFile.ReadAllText(config.FullName, MvqNative.IO.Limits.JsonBytes, "config file");
            var f = RunConfig.Parse(text, config.FullName, model, train);
            (model, train) = (f.Model, f.Train);
            ConfigChecks.Check(train, config.FullName);
        }
        model.Validate();
        return (model, train);
    }

    private static int Run(ModelConfig mc, TrainConfig tc, string source, string dataSpec, bool convert, OutputFolder folder, string deviceName, int? limit, string? resume,
        SafeTensorsContent? resumeFile, string? trainChanges, bool json, string? profile, (string? Data, string? Graphs, string? Tf32) gpu = default)
    {
        var (profFrom, profTo) = ParseProfile(profile);
        string outDir = folder.Path;
        var dataset = DataSpec.Parse(dataSpec).Load(mc.Image.Channels, mc.Image.Height, mc.Image.Width, convert);
        if (limit is int n) dataset = dataset.Subset(Math.Min(n, dataset.Count));
        if (dataset.Count < 1) throw new MvqInputException(dataSpec, "dataset is empty");
        if (tc.Batch > dataset.Count)
        {
            // A batch larger than the dataset repeats images within one step and only costs memory.
            Log(json, $"--batch {tc.Batch} is larger than the dataset: using {dataset.Count} (every image once per step)");
            tc.Batch = dataset.Count;
        }
        ConfigChecks.CheckMemory(mc, tc.Batch, training: true, source);
        // The facade trains; this command adds resuming, the CUDA options, the progress display, evaluation and the output files.
        using var model = MvqModel.Create(mc, tc, deviceName, source);
        var backend = model.Backend;
        var cuda = backend as MvqNative.Backends.Cuda.CudaBackend;
        if (cuda is null && (gpu.Data == "on" || gpu.Graphs == "on" || gpu.Tf32 == "on"))
            throw new MvqUsageException("--device-data, --cuda-graphs and --tf32 on need a cuda device");
        // Data on the device by default on CUDA when the dataset takes at most a quarter of the device memory and at most
        // half of the memory free now; otherwise (or with --device-data off) batches are staged through two pinned host
        // buffers with async copies on a second stream (docs/perf/gpu-throughput.md). The choice is logged once.
        long dataBytes = (long)dataset.Count * dataset.ImageSize * 4;
        long freeBytes = cuda?.FreeMemory() ?? 0;
        bool fits = cuda is not null && dataBytes <= cuda.Info.TotalMemory / 4 && dataBytes <= freeBytes / 2;
        if (cuda is not null && gpu.Data == "on" && !fits)
            throw new MvqUsageException($"--device-data on: the dataset ({dataBytes >> 20} MiB as float) exceeds a quarter of the device memory ({cuda.Info.TotalMemory >> 20} MiB) or half of the free memory ({freeBytes >> 20} MiB)");
        bool onDevice = Cli.On(gpu.Data, fits);
        var trainerOptions = new TrainerOptions(onDevice, Cli.On(gpu.Graphs, cuda is not null), PinnedData: cuda is not null && !onDevice);
        if (cuda is not null) cuda.Tf32 = Cli.On(gpu.Tf32, false);
        if (cuda is not null)
            Log(json, $"cuda: dataset {dataBytes >> 20} MiB as float, device memory {freeBytes >> 20} MiB free of {cuda.Info.TotalMemory >> 20} MiB: " +
                (onDevice ? "data on the device" : $"batches staged through pinned host memory ({(gpu.Data == "off" ? "--device-data off" : "the dataset does not fit the budget")})") +
                $", CUDA graphs {(trainerOptions.DeviceData && trainerOptions.CudaGraphs ? "on" : "off")}, TF32 {(cuda.Tf32 ? "on" : "off")}");
        var ckpt = folder.File("model.safetensors");
        var history = new List<StepStats>();
        var hooks = new MvqModel.TrainHooks
        {
            TrainerOptions = trainerOptions,
            ProfileFrom = profFrom,
            ProfileTo = profTo,
            OnLog = history.Add,
            Resume = resume is null ? null : trainer =>
            {
                var st = ModelCheckpoint.RestoreTraining(resumeFile!, resume, trainer);
                Log(json, $"resumed from {resume} at step {st.Step}");
                if (st.NewDataOrder)
                    Log(json, $"the checkpoint was trained on {(st.SavedDatasetCount is long c ? c + " images" : "another dataset")}, this dataset has {dataset.Count}: continuing with a new data order");
                if (!string.IsNullOrEmpty(trainChanges)) Log(json, $"train settings changed from the checkpoint's: {trainChanges}");
                if (st.Step >= tc.Steps)
                    throw new MvqInputException(resume, $"the checkpoint is at step {st.Step}, which already reaches --steps {tc.Steps}; pass a larger --steps to train further");
                return resume;
            },
        };
        Log(json, $"training {mc.Kind.Name()} ({mc.Head.Name()} head, {mc.TokensPerInstance} tokens/instance, {model.ParameterCount:N0} parameters) on {backend.Name}: {tc.Steps} steps x {tc.Batch} images of {dataset.Name} ({dataset.Count} images)");

        var started = DateTime.UtcNow;
        var options = new MvqTrainOptions { CheckpointPath = ckpt };
        var images = new MvqImages(dataset);
        MvqTrainResult result;
        if (Cli.Interactive && !json)
        {
            MvqTrainResult? r = null;
            AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("training", maxValue: tc.Steps);
                    hooks.OnLog = st =>
                    {
                        history.Add(st);
                        task.Value = st.Step;
                        task.Description = $"loss {st.Loss:F4} rec {st.Reconstruction:F4} {st.ImagesPerSecond:F0} img/s";
                    };
                    r = model.TrainCore(images, options, null, CancellationToken.None, hooks);
                });
            result = r!;
        }
        else
        {
            hooks.OnLog = st => { history.Add(st); Log(json, FormatStep(st)); };
            result = model.TrainCore(images, options, null, CancellationToken.None, hooks);
        }
        double seconds = (DateTime.UtcNow - started).TotalSeconds;

        // Held-out figures: the test split when training on FashionMNIST, else the first images.
        var evalData = dataSpec.StartsWith("fashion-mnist", StringComparison.Ordinal)
            ? DataSpec.Parse("fashion-mnist:test").Load(mc.Image.Channels, mc.Image.Height, mc.Image.Width) : dataset;
        var report = model.Evaluate(MvqImages.FromDataset(evalData), limit: 2000);
        WriteReconstructions(Path.Combine(outDir, "reconstructions.png"), model, evalData);
        LossPlot.Save(Path.Combine(outDir, "loss.png"), history, $"{mc.Kind.Name()} {mc.Head.Name()}: training loss");
        var metrics = new JsonObject
        {
            ["model"] = JsonNode.Parse(mc.ToJson()),
            ["train"] = JsonNode.Parse(tc.ToJson()),
            ["device"] = backend.Name,
            ["dataset"] = dataset.Name,
            ["steps"] = result.Step,
            ["seconds"] = seconds,
            ["tokens_per_instance"] = mc.TokensPerInstance,
            ["final_loss"] = history.Count > 0 ? history[^1].Loss : null,
            ["history"] = new JsonArray(history.Select(h => (JsonNode)new JsonObject
            {
                ["step"] = h.Step, ["loss"] = h.Loss, ["rec"] = h.Reconstruction, ["grad_norm"] = h.GradNorm,
                ["lr"] = h.Lr, ["ms"] = h.MsPerStep, ["images_per_s"] = h.ImagesPerSecond,
                ["terms"] = new JsonObject(h.Terms.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            }).ToArray()),
            ["eval"] = EvalCommand.ToJson(report),
        };
        var metricsText = metrics.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteText(Path.Combine(outDir, "metrics.json"), metricsText);
        if (json) Cli.PrintJson(new JsonObject { ["out"] = outDir, ["steps"] = result.Step, ["seconds"] = seconds, ["eval"] = EvalCommand.ToJson(report) });
        else
        {
            Console.WriteLine($"done in {seconds:F0} s; held-out ({report.Images} images of {report.Dataset}): mse {report.Mse:F5} psnr {report.Psnr:F2} ssim {report.Ssim:F3} codebook usage {report.CodebookUsage:P0} perplexity {report.Perplexity:F1}");
            Console.WriteLine($"wrote {ckpt}, metrics.json, reconstructions.png, loss.png in {outDir}");
        }
        return 0;
    }

    internal static string FormatStep(StepStats s) =>
        $"step {s.Step,6} | loss {s.Loss:F5} | rec {s.Reconstruction:F5} | {string.Join(" | ", s.Terms.Select(kv => $"{kv.Key} {kv.Value:F5}"))} | grad {s.GradNorm:F3} | lr {s.Lr:E2} | {s.MsPerStep:F1} ms | {s.ImagesPerSecond:F0} img/s";

    private static void Log(bool json, string line)
    {
        if (json) Console.Error.WriteLine(line); else Console.WriteLine(line);
    }

    private static (int, int) ParseProfile(string? spec)
    {
        if (spec is null) return (-1, -1);
        var parts = spec.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], out int a) && int.TryParse(parts[1], out int b) && a >= 0 && b > a) return (a, b);
        throw new MvqUsageException($"--profile-steps expects A:B with 0 <= A < B, got '{spec}'");
    }

    /// <summary>Originals on the top row, reconstructions below, 16 test images.</summary>
    internal static void WriteReconstructions(string path, MvqModel model, ImageDataset data)
    {
        int n = Math.Min(16, data.Count);
        var orig = data.Pixels.AsSpan(0, n * model.ImageSize).ToArray();
        var recon = model.Reconstruct(orig);
        var both = new float[orig.Length * 2];
        orig.CopyTo(both, 0);
        recon.CopyTo(both, orig.Length);
        ImageGrid.Save(path, both, 2 * n, model.Channels, model.Height, model.Width, columns: n, scale: 3);
    }
}
