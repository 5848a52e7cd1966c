using System.CommandLine;
using MvqNative.Imaging;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq sample`: codes from a prior (KV-cache decoding), images from its autoencoder: NNNNN.png, grid.png, codes.json.
/// A user command: facade only (MvqModel, MvqPrior.Sample).</summary>
internal static class SampleCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "autoencoder checkpoint", Required = true };
        var prior = new Option<FileInfo>("--prior") { Description = "prior.safetensors trained on that autoencoder", Required = true };
        var count = new Option<int>("--count") { Description = "images to generate", DefaultValueFactory = _ => 64 };
        var output = new Option<string>("--output") { Description = "folder for NNNNN.png, grid.png, codes.json", Required = true };
        var temperature = new Option<float>("--temperature") { Description = "softmax temperature (> 0)", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "keep the k most probable tokens (0: all)", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "keep the most probable tokens up to this mass, in (0, 1]", DefaultValueFactory = _ => 1f };
        var batch = new Option<int>("--batch") { Description = "sequences decoded together", DefaultValueFactory = _ => 64 };
        var mask = new Option<string>("--mask") { Description = "MVQ: prior (w from the prior) | random (a fresh Bernoulli mask per image)", DefaultValueFactory = _ => "prior" };
        var graphs = Cli.Switch("--cuda-graphs", "cuda: capture one decoding step as a CUDA graph and replay it per position (default on for cuda devices)");
        var device = Cli.Device(); var seed = Cli.Seed();
        var cmd = new Command("sample", "Generate images: codes from the prior, decoded by the autoencoder.\nExample: mvq sample --model runs/vq/model.safetensors --prior runs/vq-prior/prior.safetensors --count 64 --output samples")
        { model, prior, count, output, temperature, topK, topP, batch, mask, graphs, device, seed };
        cmd.SetAction(r =>
        {
            // Options first: nothing is loaded or written when one is wrong.
            int n = r.GetValue(count);
            if (n < 1) throw new MvqUsageException($"--count must be >= 1, got {n}");
            int bs = r.GetValue(batch);
            var maskName = r.GetValue(mask);
            var opt = new MvqSampleOptions(r.GetValue(temperature), r.GetValue(topK), r.GetValue(topP), r.GetValue(seed) ?? 1, maskName == "random", bs,
                r.GetValue(graphs) is string g0 ? g0 == "on" : null);
            opt.Validate();
            if (bs < 1) throw new MvqUsageException($"--batch must be >= 1, got {bs}");
            if (maskName is not ("prior" or "random")) throw new MvqUsageException($"--mask must be prior or random, got '{maskName}'");
            var modelPath = r.GetValue(model)!.FullName;
            var priorPath = r.GetValue(prior)!.FullName;
            if (!File.Exists(modelPath)) throw new MvqInputException(modelPath, "model file does not exist");
            using var ae = MvqModel.Load(modelPath, r.GetValue(device)!);
            if (opt.RandomMasks && ae.MaskBits == 0) throw new MvqUsageException($"--mask random needs an MVQ model; {modelPath} is {(ae.Kind == "vq" ? "Vq" : "Mvq")}");
            using var p = MvqPrior.Load(priorPath, ae);
            var g = p.Sample(n, opt);

            var dir = r.GetValue(output)!;
            Directory.CreateDirectory(dir);
            int per = ae.ImageSize;
            for (int i = 0; i < n; i++)
                ImageGrid.Save(Path.Combine(dir, DecodeCommand.FileName(i)), g.Images.AsSpan(i * per, per), 1, ae.Channels, ae.Height, ae.Width, columns: 1, scale: 1, padding: 0);
            int shown = Math.Min(DecodeCommand.GridMax, n);
            ImageGrid.Save(Path.Combine(dir, "grid.png"), g.Images, shown, ae.Channels, ae.Height, ae.Width, columns: Math.Min(16, shown), scale: 2);
            var names = Enumerable.Range(0, n).Select(i => $"sample {i} (seed {opt.Seed})").ToList();
            new MvqCodes(g.Codes.Values, g.Codes.Segments, g.Codes.MaskWords) { Sources = names }.Save(Path.Combine(dir, "codes.json"), ae);
            Console.WriteLine($"sampled {n} image{(n == 1 ? "" : "s")} ({p.CodeLength} tokens each) in {g.PriorMilliseconds:F0} ms (prior) + {g.DecodeMilliseconds:F0} ms (decoder); " +
                              $"wrote {DecodeCommand.FileName(0)}..., grid.png and codes.json to {dir}");
            return 0;
        });
        return cmd;
    }
}
