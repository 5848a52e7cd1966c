using System.CommandLine;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq encode`: images -> codes.json (k1 for VQ; k1, k2, w for MVQ), in evaluation mode. A user command: facade only.</summary>
internal static class EncodeCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "checkpoint", Required = true };
        var input = new Option<string>("--input") { Description = "an image file, a folder of images, or a data spec (fashion-mnist:test, idx:PATH)", Required = true };
        var limit = new Option<int?>("--limit") { Description = "encode only the first N images" };
        var output = new Option<string>("--output") { Description = "codes file to write (JSON)", Required = true };
        var batch = new Option<int>("--batch") { Description = "images per forward pass", DefaultValueFactory = _ => 64 };
        var device = Cli.Device(); var convert = Cli.Convert();
        var cmd = new Command("encode", "Encode images into discrete codes (codes.json).\nExample: mvq encode --model runs/mvq/model.safetensors --input fashion-mnist:test --limit 16 --output codes.json")
        { model, input, limit, output, batch, convert, device };
        cmd.SetAction(r =>
        {
            var outPath = r.GetValue(output)!;
            Cli.RefuseInputAsOutput(outPath, r.GetValue(input)!, r.GetValue(model)!.FullName);
            int bs = r.GetValue(batch);
            if (bs < 1) throw new MvqUsageException($"--batch must be >= 1, got {bs}");
            using var m = MvqModel.Load(r.GetValue(model)!.FullName, r.GetValue(device)!);
            var (images, names) = InputImages.Load(r.GetValue(input)!, m, r.GetValue(limit), Cli.ConvertFlag(r.GetValue(convert), m.Channels));
            var codes = m.Encode(images.Pixels, bs);
            new MvqCodes(codes.Values, codes.Segments) { Sources = names }.Save(outPath, m);
            var layout = string.Join(", ", m.Segments.Select(s => $"{s.Name} [{s.Length}] of {s.Vocabulary}"));
            Console.WriteLine($"wrote {images.Count} code{(images.Count == 1 ? "" : "s")} ({layout}) to {outPath}");
            return 0;
        });
        return cmd;
    }
}
