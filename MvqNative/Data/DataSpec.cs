// DataSpec.cs: parses the textual data source a user gives (fashion-mnist, folder:PATH, idx:PATH) and loads it.
namespace MvqNative.Data;

/// <summary>What kind of source a <see cref="DataSpec"/> names.</summary>
internal enum DataSourceKind
{
    /// <summary>Fashion-MNIST from the usual places (see <see cref="FashionMnist.SearchDirs"/>).</summary>
    FashionMnist,
    /// <summary>A directory of PNG/JPEG/BMP/GIF files (see <see cref="ImageFolder"/>).</summary>
    Folder,
    /// <summary>An IDX ubyte images file, optionally with an IDX labels file.</summary>
    Idx,
    /// <summary>Downsampled ImageNet .npz batch files (see <see cref="ImageNet64"/>).</summary>
    ImageNet64,
}

/// <summary>
/// A parsed data source. Accepted forms:
/// <list type="bullet">
/// <item><c>fashion-mnist</c> (train split), <c>fashion-mnist:train</c>, <c>fashion-mnist:test</c></item>
/// <item><c>folder:PATH</c>: every image in the directory PATH</item>
/// <item><c>idx:IMAGES</c> or <c>idx:IMAGES,LABELS</c>: IDX files, raw or .gz (a path that exists as given is taken
/// whole, and the split is made at the first comma whose left part is an existing file, so commas in names work)</item>
/// <item><c>imagenet64:PATH</c>: a downsampled-ImageNet .npz batch file or a folder of them (RGB)</item>
/// </list>
/// </summary>
internal sealed record DataSpec(DataSourceKind Kind, string Text, string? Split, string? Path, string? LabelsPath)
{
    /// <summary>Parses <paramref name="spec"/>; folder and idx paths must exist.</summary>
    /// <exception cref="MvqInputException">Unknown form, bad split, or a missing path (the message shows the spec or the path).</exception>
    public static DataSpec Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var s = spec.Trim();
        if (s == "fashion-mnist") return new DataSpec(DataSourceKind.FashionMnist, s, "train", null, null);
        if (s.StartsWith("fashion-mnist:", StringComparison.Ordinal))
        {
            var split = s["fashion-mnist:".Length..];
            if (split is not ("train" or "test"))
                throw new MvqInputException(spec, $"unknown fashion-mnist split '{split}' (use fashion-mnist:train or fashion-mnist:test)");
            return new DataSpec(DataSourceKind.FashionMnist, s, split, null, null);
        }
        if (s.StartsWith("folder:", StringComparison.Ordinal))
        {
            var dir = s["folder:".Length..];
            if (dir.Length == 0) throw new MvqInputException(spec, "folder: needs a path (folder:PATH)");
            if (!Directory.Exists(dir)) throw new MvqInputException(dir, "image folder not found");
            return new DataSpec(DataSourceKind.Folder, s, null, dir, null);
        }
        if (s.StartsWith("idx:", StringComparison.Ordinal))
        {
            var rest = s["idx:".Length..];
            if (rest.Length == 0) throw new MvqInputException(spec, "idx: needs a path (idx:IMAGES or idx:IMAGES,LABELS)");
            string images = rest;
            string? labels = null;
            // Split at the first comma whose left part is an existing file (else the first comma), so commas in names work.
            int comma = -1;
            for (int i = rest.IndexOf(','); i >= 0 && comma < 0; i = rest.IndexOf(',', i + 1))
                if (File.Exists(rest[..i])) comma = i;
            if (comma < 0) comma = rest.IndexOf(',');
            if (!File.Exists(rest) && comma >= 0)
            {
                images = rest[..comma];
                labels = rest[(comma + 1)..];
                if (labels.Length == 0) throw new MvqInputException(spec, "empty labels path after ','");
                if (!File.Exists(labels)) throw new MvqInputException(labels, "IDX labels file not found");
            }
            if (!File.Exists(images)) throw new MvqInputException(images, "IDX images file not found");
            return new DataSpec(DataSourceKind.Idx, s, null, images, labels);
        }
        if (s.StartsWith("imagenet64:", StringComparison.Ordinal))
        {
            var p = s["imagenet64:".Length..];
            if (p.Length == 0) throw new MvqInputException(spec, "imagenet64: needs a path (imagenet64:FILE.npz or imagenet64:FOLDER)");
            if (!File.Exists(p) && !Directory.Exists(p)) throw new MvqInputException(p, "imagenet64 path not found");
            return new DataSpec(DataSourceKind.ImageNet64, s, null, p, null);
        }
        throw new MvqInputException(spec, "unknown data spec (use fashion-mnist[:train|:test], folder:PATH, idx:IMAGES[,LABELS] or imagenet64:PATH)");
    }

    /// <summary>
    /// Loads the source for a model taking [C, H, W] = (<paramref name="channels"/>, <paramref name="height"/>,
    /// <paramref name="width"/>) inputs. Folders are cropped and resized to fit; IDX sources (Fashion-MNIST included)
    /// must already have that size, else a clear error. <paramref name="convert"/> applies the channel rule of
    /// <see cref="ImageFile"/> (for IDX sources, a 1-channel set is repeated into 3 channels when convert is true).
    /// </summary>
    /// <exception cref="MvqInputException">The data is missing, corrupt, or does not fit the model's input shape.</exception>
    public ImageDataset Load(int channels, int height, int width, bool convert = false)
    {
        switch (Kind)
        {
            case DataSourceKind.Folder:
                return ImageFolder.Load(Path!, channels, height, width, convert);
            case DataSourceKind.FashionMnist:
                return Fit(FashionMnist.Load(Split!), Text, channels, height, width, convert);
            case DataSourceKind.ImageNet64:
                return Fit(ImageNet64.Load(Path!), Path!, channels, height, width, convert);
            default:
                return Fit(IdxDataset.Load(Text, Path!, LabelsPath), Path!, channels, height, width, convert);
        }
    }

    private static ImageDataset Fit(ImageDataset d, string file, int channels, int height, int width, bool convert)
    {
        if (d.Height != height || d.Width != width)
            throw new MvqInputException(file, $"images are {d.Height}x{d.Width} but the model takes {height}x{width}");
        if (d.Channels == channels) return d;
        if (d.Channels == 1 && channels == 3 && convert)
        {
            int plane = height * width;
            var px = new float[(long)d.Count * 3 * plane];
            for (int i = 0; i < d.Count; i++)
            {
                var src = d.Pixels.AsSpan(i * plane, plane);
                for (int c = 0; c < 3; c++) src.CopyTo(px.AsSpan((i * 3 + c) * plane, plane));
            }
            return new ImageDataset(d.Name, d.Count, 3, height, width, px, d.Labels);
        }
        throw new MvqInputException(file, $"images have {d.Channels} channel(s) but the model takes {channels}" +
            (d.Channels == 1 && channels == 3 ? "; pass --convert rgb to repeat gray into R, G, B" : ""));
    }
}
