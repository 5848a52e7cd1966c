using System.CommandLine;
using MvqNative.Imaging;

namespace MvqNative.Cli.Commands;

/// <summary>
/// `mvq traverse` (MVQ only): for one image, a PNG grid of reconstructions under changed masks: row 1 the
/// original and the winner's reconstruction; then one image per single mask bit toggled from the winner's
/// word (D2 images, in bit order); then N random masks (seeded, drop rate p). Rows are padded with white cells.
/// A user command: facade only (the winner's mask word, random mask words, decoding codes with mask words).
/// </summary>
internal static class TraverseCommand
{
    /// <summary>Most random masks one grid shows (each is a decoded image held in memory and drawn).</summary>
    public const int MaxRandom = 1024;

    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "MVQ checkpoint", Required = true };
        var input = new Option<string>("--input") { Description = "an image file (or a data spec: its first image)", Required = true };
        var output = new Option<string>("--output") { Description = "PNG grid to write", Required = true };
        var random = new Option<int>("--random") { Description = "random masks to add (last rows)", DefaultValueFactory = _ => 8 };
        var scale = new Option<int>("--scale") { Description = "pixel scale of the grid", DefaultValueFactory = _ => 3 };
        var device = Cli.Device(); var seed = Cli.Seed(); var convert = Cli.Convert();
        var cmd = new Command("traverse", "MVQ only: reconstructions of one image with each mask bit of the winning mask toggled, and with random masks.\nExample: mvq traverse --model runs/mvq/model.safetensors --input shirt.png --output traverse.png --random 16")
        { model, input, output, random, scale, convert, device, seed };
        cmd.SetAction(r =>
        {
            int nRandom = r.GetValue(random);
            if (nRandom is < 0 or > MaxRandom) throw new MvqUsageException($"--random must be from 0 to {MaxRandom}, got {nRandom}");
            int sc = r.GetValue(scale);
            if (sc is < 1 or > 16) throw new MvqUsageException($"--scale must be from 1 to 16, got {sc}");
            Cli.RefuseInputAsOutput(r.GetValue(output)!, r.GetValue(input)!, r.GetValue(model)!.FullName);
            var modelPath = r.GetValue(model)!.FullName;
            using var m = MvqModel.Load(modelPath, r.GetValue(device)!);
            if (m.MaskBits == 0)
                throw new MvqInputException(modelPath, $"traverse needs an MVQ model (this one is {m.Kind}: its code has no mask to traverse)");
            var (ds, _) = InputImages.Load(r.GetValue(input)!, m, 1, Cli.ConvertFlag(r.GetValue(convert), m.Channels));
            int per = m.ImageSize, len = m.CodeLength, d2 = m.MaskBits;

            float[] orig = ds.Pixels.ToArray(), winner = m.Reconstruct(orig);
            int[] code = m.Encode(orig).Values;
            int w = code[len - 1];
            uint word = m.EvaluationMask(w);
            var words = new uint[d2 + nRandom];
            for (int i = 0; i < d2; i++) words[i] = word ^ (1u << i);
            if (nRandom > 0) m.RandomMasks(nRandom, r.GetValue(seed) ?? 1).CopyTo(words, d2);
            var codes = new int[words.Length * len];
            for (int i = 0; i < words.Length; i++) code.CopyTo(codes, i * len);
            // One pass over all masks, as one batch.
            float[] decoded = m.Decode(new MvqCodes(codes, m.Segments, words), batch: words.Length);

            int cols = Math.Max(2, Math.Min(d2, 16));
            var cells = new List<float[]>();
            void Row(IEnumerable<float[]> imgs)
            {
                int k = 0;
                foreach (var x in imgs) { cells.Add(x); k++; }
                while (k % cols != 0) { cells.Add(Enumerable.Repeat(1f, per).ToArray()); k++; }
            }
            Row([orig, winner]);
            Row(Enumerable.Range(0, d2).Select(i => decoded.AsSpan(i * per, per).ToArray()));
            if (nRandom > 0) Row(Enumerable.Range(d2, nRandom).Select(i => decoded.AsSpan(i * per, per).ToArray()));
            var all = cells.SelectMany(x => x).ToArray();
            var outPath = r.GetValue(output)!;
            ImageGrid.Save(outPath, all, cells.Count, m.Channels, m.Height, m.Width, columns: cols, scale: sc);
            Console.WriteLine($"wrote {outPath}: winner w={w} (mask {Convert.ToString(word, 2).PadLeft(d2, '0')}, bit 0 rightmost), {d2} single-bit toggles, {nRandom} random masks; {cols} columns");
            return 0;
        });
        return cmd;
    }
}
