// InputImages.cs: the --input of encode/traverse: one image file, a folder of images, or a dataset spec,
// loaded at the model's input shape, with a source name per image.
using MvqNative.Data;

namespace MvqNative.Cli;

/// <summary>Images to run through a model, each with the name it came from.</summary>
internal static class InputImages
{
    /// <summary>
    /// Loads <paramref name="input"/> (an image file, a folder of images, or a data spec such as
    /// fashion-mnist:test) at the model's shape; the first <paramref name="limit"/> images when given.
    /// Names: the file name for files and folders, "SPEC#INDEX" for data specs.
    /// </summary>
    public static (MvqImages Images, string[] Names) Load(string input, MvqModel model, int? limit, bool convert = false)
    {
        var (ds, names) = Load(input, model.Channels, model.Height, model.Width, limit, convert);
        return (MvqImages.FromDataset(ds), names);
    }

    /// <summary>A data spec at the model's shape, all of it (possibly empty: the caller decides what that means).</summary>
    public static MvqImages LoadSpec(string spec, MvqModel model, bool convert) =>
        MvqImages.FromDataset(DataSpec.Parse(spec).Load(model.Channels, model.Height, model.Width, convert));

    private static (ImageDataset Data, string[] Names) Load(string input, int channels, int height, int width, int? limit, bool convert)
    {
        var im = (Channels: channels, Height: height, Width: width);
        if (limit is < 1) throw new MvqUsageException($"--limit must be >= 1, got {limit}");
        ImageDataset ds;
        string[] names;
        if (File.Exists(input))
        {
            ds = new ImageDataset(input, 1, im.Channels, im.Height, im.Width, ImageFile.Load(input, im.Channels, im.Height, im.Width, convert));
            names = [Path.GetFileName(input)];
        }
        else if (Directory.Exists(input))
        {
            // The listing ImageFolder reads (image extensions, ordinal name order).
            names = ImageFolder.Files(input).Select(f => Path.GetFileName(f)).ToArray();
            ds = ImageFolder.Load(input, im.Channels, im.Height, im.Width, convert);
        }
        else
        {
            ds = DataSpec.Parse(input).Load(im.Channels, im.Height, im.Width, convert);
            names = Enumerable.Range(0, ds.Count).Select(i => $"{input}#{i}").ToArray();
        }
        if (names.Length != ds.Count) throw new MvqInputException(input, $"found {names.Length} image names for {ds.Count} images");
        if (limit is int n && n < ds.Count)
        {
            ds = ds.Subset(n);
            names = names[..n];
        }
        if (ds.Count < 1) throw new MvqInputException(input, "no images");
        return (ds, names);
    }
}
