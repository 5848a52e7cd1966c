using System.CommandLine;
using MvqNative.Checkpoints;
using MvqNative.Imaging;
using MvqNative.Models;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq decode`: codes.json -> one PNG per instance and grid.png, in evaluation mode.</summary>
internal static class DecodeCommand
{
    /// <summary>Instances shown in grid.png at most (the PNGs of all are written).</summary>
    public const int GridMax = 256;

    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "checkpoint (the one that made the codes)", Required = true };
        var codes = new Option<string>("--codes") { Description = "codes file written by mvq encode", Required = true };
        var output = new Option<string>("--output") { Description = "folder for NNNNN.png per instance and grid.png", Required = true };
        var device = Cli.Device();
        var cmd = new Command("decode", "Decode codes (codes.json) into images.\nExample: mvq decode --model runs/mvq/model.safetensors --codes codes.json --output decoded")
        { model, codes, output, device };
        cmd.SetAction(r =>
        {
            var dir = r.GetValue(output)!;
            using var folder = MvqNative.IO.OutputFolder.Acquire(dir, "mvq decode");
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var m = ModelCheckpoint.Load(r.GetValue(model)!.FullName, backend);
            var (names, c, masks) = CodesFile.ReadWithMasks(r.GetValue(codes)!, m);
            foreach (var f in Enumerable.Range(0, names.Length).Select(FileName).Append("grid.png"))
                Cli.RefuseInputAsOutput(Path.Combine(dir, f), r.GetValue(codes)!, r.GetValue(model)!.FullName);
            using var session = new InferenceSession(m, 64);
            var images = session.Decode(c, masks);
            var im = m.Config.Image;
            int per = im.Channels * im.Height * im.Width;
            for (int i = 0; i < names.Length; i++)
                ImageGrid.Save(Path.Combine(dir, FileName(i)), images.AsSpan(i * per, per), 1, im.Channels, im.Height, im.Width, columns: 1, scale: 1, padding: 0);
            int g = Math.Min(GridMax, names.Length);
            ImageGrid.Save(Path.Combine(dir, "grid.png"), images, g, im.Channels, im.Height, im.Width, columns: Math.Min(16, g), scale: 2);
            Console.WriteLine($"wrote {names.Length} image{(names.Length == 1 ? "" : "s")} ({FileName(0)}...) and grid.png to {dir}");
            return 0;
        });
        return cmd;
    }

    /// <summary>File name of instance i: its index, zero-padded (source names may collide or hold odd characters).</summary>
    public static string FileName(int i) => $"{i:D5}.png";
}
