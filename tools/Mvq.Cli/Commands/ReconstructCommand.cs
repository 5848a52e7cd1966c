using System.CommandLine;
using MvqNative.Checkpoints;
using MvqNative.Data;
using MvqNative.Imaging;
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
        var device = Cli.Device();
        var cmd = new Command("reconstruct", "Reconstruct images through the autoencoder.\nExample: mvq reconstruct --model runs/vq/model.safetensors --input shirt.png --output shirt_rec.png")
        { model, input, output, device };
        cmd.SetAction(r =>
        {
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var m = ModelCheckpoint.Load(r.GetValue(model)!.FullName, backend);
            var im = m.Config.Image;
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            bool dir = Directory.Exists(inPath);
            if (!dir && !File.Exists(inPath)) throw new MvqInputException(inPath, "no such file or folder");
            var ds = dir ? ImageFolder.Load(inPath, im.Channels, im.Height, im.Width)
                : new ImageDataset(inPath, 1, im.Channels, im.Height, im.Width, ImageFile.Load(inPath, im.Channels, im.Height, im.Width));
            // Same listing rule as ImageFolder (image extensions, ordinal name order), for output names.
            var names = dir ? Directory.EnumerateFiles(inPath).Where(f => ImageFile.Extensions.Contains(Path.GetExtension(f)))
                .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToArray() : [outPath];
            if (dir) Directory.CreateDirectory(outPath);
            int per = im.Channels * im.Height * im.Width;
            using var session = new InferenceSession(m, 64);
            for (int start = 0; start < ds.Count; start += 64)
            {
                int b = Math.Min(64, ds.Count - start);
                var (_, rec, _) = session.Run(ds, start, b);
                for (int i = 0; i < b; i++)
                {
                    var target = dir ? Path.Combine(outPath, Path.ChangeExtension(Path.GetFileName(names[start + i]), ".png")) : outPath;
                    ImageGrid.Save(target, rec.AsSpan(i * per, per), 1, im.Channels, im.Height, im.Width, columns: 1, scale: 1, padding: 0);
                }
            }
            Console.WriteLine($"wrote {ds.Count} reconstruction{(ds.Count == 1 ? "" : "s")} to {outPath}");
            return 0;
        });
        return cmd;
    }
}
