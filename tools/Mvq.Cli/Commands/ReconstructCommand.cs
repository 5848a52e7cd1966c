using System.CommandLine;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Imaging;
using MvqNative.IO;
using MvqNative.Models;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq reconstruct`: runs images through a model (encode + decode) and writes the reconstructions.</summary>
public static class ReconstructCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "checkpoint", Required = true };
        var input = new Option<string>("--input") { Description = "an image file or a folder of images", Required = true };
        var output = new Option<string>("--output") { Description = "an image file (for one input image) or a folder", Required = true };
        var convert = Cli.Convert();
        var device = Cli.Device();
        var cmd = new Command("reconstruct", "Reconstruct images through the autoencoder.\nExample: mvq reconstruct --model runs/vq/model.safetensors --input shirt.png --output shirt_rec.png")
        { model, input, output, convert, device };
        cmd.SetAction(r =>
        {
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            bool dir = Directory.Exists(inPath);
            if (!dir && !File.Exists(inPath)) throw new MvqInputException(inPath, "no such file or folder");
            // Output names before any work: unique, and never one of the inputs.
            var sources = dir ? ImageFolder.Files(inPath) : [Path.GetFullPath(inPath)];
            var targets = dir ? OutputNames(sources, outPath) : [Path.GetFullPath(outPath)];
            var inputs = new HashSet<string>(sources.Select(Cli.RealPath), StringComparer.Ordinal);
            inputs.Add(Cli.RealPath(r.GetValue(model)!.FullName));
            foreach (var t in targets)
                if (inputs.Contains(Cli.RealPath(t)))
                    throw new MvqInputException(t, "is an input of this command; refusing to write over it (choose another --output)");
            using var lockDir = dir ? OutputFolder.Acquire(outPath, "mvq reconstruct") : null;

            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var m = ModelCheckpoint.Load(r.GetValue(model)!.FullName, backend);
            var im = m.Config.Image;
            bool conv = Cli.ConvertFlag(r.GetValue(convert), im.Channels);
            var ds = dir ? ImageFolder.Load(inPath, im.Channels, im.Height, im.Width, conv)
                : new ImageDataset(inPath, 1, im.Channels, im.Height, im.Width, ImageFile.Load(inPath, im.Channels, im.Height, im.Width, conv));
            if (ds.Count != targets.Length) throw new MvqInputException(inPath, $"found {ds.Count} images for {targets.Length} names (the folder changed while being read?)");
            int per = im.Channels * im.Height * im.Width;
            using var session = new InferenceSession(m, 64);
            int written = 0;
            for (int start = 0; start < ds.Count; start += 64)
            {
                int b = Math.Min(64, ds.Count - start);
                var (_, rec, _) = session.Run(ds, start, b);
                for (int i = 0; i < b; i++)
                {
                    ImageGrid.Save(targets[start + i], rec.AsSpan(i * per, per), 1, im.Channels, im.Height, im.Width, columns: 1, scale: 1, padding: 0);
                    written++;
                }
            }
            Console.WriteLine($"wrote {written} reconstruction{(written == 1 ? "" : "s")} to {outPath}");
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// One PNG per source in <paramref name="outDir"/>: NAME.png, or NAME_EXT.png when another source has the same
    /// NAME (shirt.png, shirt.gif -> shirt_png.png, shirt_gif.png). Names that still collide are refused.
    /// </summary>
    internal static string[] OutputNames(IReadOnlyList<string> sources, string outDir)
    {
        var stems = sources.Select(s => Path.GetFileNameWithoutExtension(s)).ToArray();
        var counts = stems.GroupBy(s => s, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var names = sources.Select((s, i) => counts[stems[i]] == 1 ? stems[i] + ".png"
            : stems[i] + "_" + Path.GetExtension(s).TrimStart('.').ToLowerInvariant() + ".png").ToArray();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
            if (!seen.TryAdd(names[i], sources[i]))
                throw new MvqInputException(sources[i], $"its reconstruction would be named {names[i]}, as that of {Path.GetFileName(seen[names[i]])}; rename one of them");
        var full = Path.GetFullPath(outDir);
        return names.Select(n => Path.Combine(full, n)).ToArray();
    }
}
