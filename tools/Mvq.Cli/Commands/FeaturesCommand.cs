// A developer command: it may reach library internals (docs/api.md, "Which commands use the facade").
using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using MvqNative.Data;
using MvqNative.Metrics;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq features train | accuracy`: the classifier whose features FID, KID, precision/recall and the perceptual distance use.</summary>
internal static class FeaturesCommand
{
    public static Command Create()
    {
        var cmd = new Command("features", "The feature network of the metrics (a small CNN classifier).\nExample: mvq features train --out features.safetensors --seed 1");
        cmd.Subcommands.Add(TrainCmd());
        cmd.Subcommands.Add(AccuracyCmd());
        return cmd;
    }

    private static Command TrainCmd()
    {
        var output = new Option<FileInfo>("--out") { Description = "weights file to write (safetensors)", Required = true };
        var train = new Option<string>("--data") { Description = "labelled training data", DefaultValueFactory = _ => "fashion-mnist:train" };
        var test = new Option<string>("--test") { Description = "labelled test data (accuracy after every epoch)", DefaultValueFactory = _ => "fashion-mnist:test" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 8 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 128 };
        var lr = new Option<float>("--lr") { Description = "peak learning rate", DefaultValueFactory = _ => 2e-3f };
        var size = new Option<string>("--image") { Description = "CxHxW of the network's input", DefaultValueFactory = _ => "1x28x28" };
        var widths = new Option<string>("--widths") { Description = "conv widths a,b,c", DefaultValueFactory = _ => "16,32,64" };
        var limit = new Option<int?>("--limit") { Description = "use only the first N training images" };
        var device = Cli.Device(); var seed = Cli.Seed(); var json = Cli.Json();
        var cmd = new Command("train", "Train the feature network; writes its weights with the command, seed and test accuracy in the metadata.")
        { output, train, test, epochs, batch, lr, size, widths, limit, device, seed, json };
        cmd.SetAction(r =>
        {
            FeatureNetConfig cfg;
            try
            {
                var dims = r.GetValue(size)!.Split('x').Select(int.Parse).ToArray();
                if (dims.Length != 3) throw new FormatException("--image must be CxHxW");
                cfg = new FeatureNetConfig { Channels = dims[0], Height = dims[1], Width = dims[2], Widths = r.GetValue(widths)!.Split(',').Select(int.Parse).ToArray() };
                cfg.Validate();
            }
            catch (Exception e) when (e is FormatException or OverflowException or ArgumentException) { throw new MvqUsageException("--image/--widths: " + e.Message); }
            var tc = new FeatureTrainConfig(Epochs: r.GetValue(epochs), Batch: r.GetValue(batch), Lr: r.GetValue(lr), Seed: r.GetValue(seed) ?? 1);
            if (tc.Epochs < 1 || tc.Batch < 1) throw new MvqUsageException("--epochs and --batch must be >= 1");
            var trainData = DataSpec.Parse(r.GetValue(train)!).Load(cfg.Channels, cfg.Height, cfg.Width);
            if (r.GetValue(limit) is int n) trainData = trainData.Subset(Math.Min(n, trainData.Count));
            var testData = DataSpec.Parse(r.GetValue(test)!).Load(cfg.Channels, cfg.Height, cfg.Width);
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var net = new FeatureNet(backend, cfg, tc.Seed);
            bool j = r.GetValue(json);
            if (!j) Console.WriteLine($"training {net} on {trainData.Name} ({trainData.Count} images), {tc.Epochs} epochs x batch {tc.Batch}, seed {tc.Seed}");
            var history = new JsonArray();
            var started = DateTime.UtcNow;
            // Written after every epoch (atomically, over the same file), so a run stopped early leaves the weights
            // of its last complete epoch, with that epoch's accuracy and "epochs_completed" in the metadata.
            Dictionary<string, string> Metadata(double acc, int done) => new()
            {
                ["command"] = "mvq " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                ["seed"] = tc.Seed.ToString(CultureInfo.InvariantCulture),
                ["train_config"] = System.Text.Json.JsonSerializer.Serialize(new JsonObject { ["epochs"] = tc.Epochs, ["batch"] = tc.Batch, ["lr"] = tc.Lr, ["min_lr"] = tc.MinLr, ["warmup_steps"] = tc.WarmupSteps, ["weight_decay"] = tc.WeightDecay, ["max_shift"] = tc.MaxShift, ["flip"] = tc.Flip, ["init"] = "he" }),
                ["epochs_completed"] = done.ToString(CultureInfo.InvariantCulture),
                ["train_data"] = trainData.Name,
                ["test_data"] = testData.Name,
                ["test_accuracy"] = acc.ToString("R", CultureInfo.InvariantCulture),
                ["history"] = history.ToJsonString(),
                ["threads"] = MvqNative.Backends.Cpu.CpuParallel.Threads.ToString(CultureInfo.InvariantCulture),
                ["date"] = started.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
            };
            double acc = FeatureTrainer.Train(net, trainData, testData, tc, l =>
            {
                history.Add(new JsonObject { ["epoch"] = l.Epoch, ["loss"] = l.Loss, ["train_accuracy"] = l.TrainAccuracy, ["test_accuracy"] = l.TestAccuracy, ["seconds"] = l.Seconds });
                net.Save(r.GetValue(output)!.FullName, Metadata(l.TestAccuracy ?? double.NaN, l.Epoch));
                if (!j) Console.WriteLine($"epoch {l.Epoch,3} | loss {l.Loss:F4} | train acc {l.TrainAccuracy:P2} | test acc {l.TestAccuracy:P2} | {l.Seconds:F0} s");
            });
            if (j) Cli.PrintJson(new JsonObject { ["out"] = r.GetValue(output)!.FullName, ["test_accuracy"] = acc, ["history"] = history });
            else Console.WriteLine($"test accuracy {acc:P2}; wrote {r.GetValue(output)!.FullName}");
            return 0;
        });
        return cmd;
    }

    private static Command AccuracyCmd()
    {
        var features = new Option<FileInfo?>("--features") { Description = "feature network weights (default: the committed FashionMNIST network)" };
        var data = new Option<string>("--data") { Description = "labelled data", DefaultValueFactory = _ => "fashion-mnist:test" };
        var device = Cli.Device(); var json = Cli.Json();
        var cmd = new Command("accuracy", "Top-1 accuracy of a feature network on labelled data.") { features, data, device, json };
        cmd.SetAction(r =>
        {
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var net = FeatureNet.Load(backend, r.GetValue(features)?.FullName);
            var c = net.Config;
            var ds = DataSpec.Parse(r.GetValue(data)!).Load(c.Channels, c.Height, c.Width);
            double acc = FeatureTrainer.Accuracy(net, ds);
            if (r.GetValue(json)) Cli.PrintJson(new JsonObject { ["accuracy"] = acc, ["images"] = ds.Count, ["network"] = net.ToString() });
            else Console.WriteLine($"{net}: accuracy {acc:P2} on {ds.Name} ({ds.Count} images)");
            return 0;
        });
        return cmd;
    }
}
