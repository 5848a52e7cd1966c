using System.CommandLine;
using MvqNative.Checkpoints;
using MvqNative.Models;

namespace MvqNative.Cli.Commands;

/// <summary>`mvq encode`: images -> codes.json (k1 for VQ; k1, k2, w for MVQ), in evaluation mode.</summary>
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
            using var backend = Cli.OpenDevice(r.GetValue(device)!);
            using var m = ModelCheckpoint.Load(r.GetValue(model)!.FullName, backend);
            var (ds, names) = InputImages.Load(r.GetValue(input)!, m.Config.Image, r.GetValue(limit), Cli.ConvertFlag(r.GetValue(convert), m.Config.Image.Channels));
            bs = Math.Min(bs, ds.Count);
            ConfigChecks.CheckMemory(m.Config, bs, training: false, r.GetValue(model)!.FullName);
            using var session = new InferenceSession(m, bs);
            var codes = new int[ds.Count * session.CodeLength];
            for (int start = 0; start < ds.Count; start += bs)
            {
                int b = Math.Min(bs, ds.Count - start);
                var (_, _, c) = session.Run(ds, start, b);
                c.CopyTo(codes, start * session.CodeLength);
            }
            CodesFile.Write(outPath, m, names, codes);
            var layout = string.Join(", ", m.Bottleneck.Segments.Select(s => $"{s.Name} [{s.Length}] of {s.Vocabulary}"));
            Console.WriteLine($"wrote {ds.Count} code{(ds.Count == 1 ? "" : "s")} ({layout}) to {outPath}");
            return 0;
        });
        return cmd;
    }
}
