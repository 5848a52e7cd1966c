using System.CommandLine;
using MvqNative.Imaging;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq decode`: codes.json -> one PNG per instance and grid.png, in evaluation mode. A user command: facade only.</summary>
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
            using var m = MvqModel.Load(r.GetValue(model)!.FullName, r.GetValue(device)!);
            var c = MvqCodes.Load(r.GetValue(codes)!, m);
            int n = c.Count;
            foreach (var f in Enumerable.Range(0, n).Select(FileName).Append("grid.png"))
                Cli.RefuseInputAsOutput(Path.Combine(dir, f), r.GetValue(codes)!, r.GetValue(model)!.FullName);
            var images = m.Decode(c);
            int per = m.ImageSize;
            for (int i = 0; i < n; i++)
                ImageGrid.Save(Path.Combine(dir, FileName(i)), images.AsSpan(i * per, per), 1, m.Channels, m.Height, m.Width, columns: 1, scale: 1, padding: 0);
            int g = Math.Min(GridMax, n);
            ImageGrid.Save(Path.Combine(dir, "grid.png"), images, g, m.Channels, m.Height, m.Width, columns: Math.Min(16, g), scale: 2);
            Console.WriteLine($"wrote {n} image{(n == 1 ? "" : "s")} ({FileName(0)}...) and grid.png to {dir}");
            return 0;
        });
        return cmd;
    }

    /// <summary>File name of instance i: its index, zero-padded (source names may collide or hold odd characters).</summary>
    public static string FileName(int i) => $"{i:D5}.png";
}
