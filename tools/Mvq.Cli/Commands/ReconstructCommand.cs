using System.CommandLine;
using System.Runtime.InteropServices;
using MvqNative.Data;
using MvqNative.Imaging;
using MvqNative.IO;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq reconstruct`: runs images through a model (encode + decode) and writes the reconstructions. A user command: facade only.</summary>
internal static class ReconstructCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "checkpoint", Required = true };
        var input = new Option<string>("--input") { Description = "an image file, a folder of images, or a data spec (fashion-mnist:test, idx:PATH)", Required = true };
        var output = new Option<string>("--output") { Description = "an image file (for one input image) or a folder", Required = true };
        var limit = new Option<int?>("--limit") { Description = "reconstruct only the first N images (data specs and folders)" };
        var raw = new Option<string?>("--raw") { Description = "also write every reconstruction as raw little-endian float32, [N, C, H, W], to this file" };
        var convert = Cli.Convert();
        var device = Cli.Device();
        var cmd = new Command("reconstruct", "Reconstruct images through the autoencoder.\nExample: mvq reconstruct --model runs/vq/model.safetensors --input shirt.png --output shirt_rec.png")
        { model, input, output, limit, raw, convert, device };
        cmd.SetAction(r =>
        {
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            string? rawPath = r.GetValue(raw);
            string modelPath = r.GetValue(model)!.FullName;
            bool file = File.Exists(inPath), dir = Directory.Exists(inPath), spec = !file && !dir;
            if (spec && !inPath.StartsWith("fashion-mnist", StringComparison.Ordinal) && !inPath.Contains(':')) throw new MvqInputException(inPath, "no such file or folder");
            if (r.GetValue(limit) is < 1) throw new MvqUsageException($"--limit must be >= 1, got {r.GetValue(limit)}");
            // Output names before any work: unique, and never one of the inputs.
            var sources = dir ? ImageFolder.Files(inPath) : file ? [Path.GetFullPath(inPath)] : [];
            if (dir && r.GetValue(limit) is int lim && lim < sources.Length) sources = sources[..lim];
            var targets = dir ? OutputNames(sources, outPath) : file ? [Path.GetFullPath(outPath)] : [];
            var inputs = new HashSet<string>(sources.Select(Cli.RealPath), StringComparer.Ordinal);
            inputs.Add(Cli.RealPath(modelPath));
            foreach (var t in targets.Concat(rawPath is null ? [] : [rawPath]))
                if (inputs.Contains(Cli.RealPath(t)))
                    throw new MvqInputException(t, "is an input of this command; refusing to write over it (choose another --output)");
            if (spec && rawPath is not null) Cli.RefuseInputAsOutput(rawPath, inPath, modelPath);
            using var lockDir = file ? null : OutputFolder.Acquire(outPath, "mvq reconstruct");

            using var m = MvqModel.Load(modelPath, r.GetValue(device)!);
            bool conv = Cli.ConvertFlag(r.GetValue(convert), m.Channels);
            var (ds, _) = InputImages.Load(inPath, m, r.GetValue(limit), conv);
            if (spec) targets = Enumerable.Range(0, ds.Count).Select(i => Path.Combine(Path.GetFullPath(outPath), DecodeCommand.FileName(i))).ToArray();
            if (ds.Count != targets.Length) throw new MvqInputException(inPath, $"found {ds.Count} images for {targets.Length} names (the folder changed while being read?)");
            int per = m.ImageSize;
            var rec = m.Reconstruct(ds.Pixels);
            for (int i = 0; i < ds.Count; i++)
                ImageGrid.Save(targets[i], rec.AsSpan(i * per, per), 1, m.Channels, m.Height, m.Width, columns: 1, scale: 1, padding: 0);
            if (rawPath is not null) AtomicFile.Write(rawPath, s => s.Write(MemoryMarshal.AsBytes(rec.AsSpan())));
            Console.WriteLine($"wrote {ds.Count} reconstruction{(ds.Count == 1 ? "" : "s")} to {outPath}{(rawPath is null ? "" : $" and {rawPath}")}");
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
