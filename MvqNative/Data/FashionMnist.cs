// FashionMnist.cs: finds and loads Fashion-MNIST (IDX files, raw or .gz) from the usual places.
namespace MvqNative.Data;

/// <summary>
/// Fashion-MNIST: 60000 train / 10000 test grayscale 28x28 images with labels 0..9.
/// Files are the upstream names (<c>train-images-idx3-ubyte[.gz]</c>, <c>train-labels-idx1-ubyte[.gz]</c>,
/// <c>t10k-*</c> for test), as shipped by Debian's <c>dataset-fashion-mnist</c> package.
/// </summary>
internal static class FashionMnist
{
    /// <summary>Where Debian's dataset-fashion-mnist package installs the files.</summary>
    public const string SystemDir = "/usr/share/datasets/fashion-mnist";

    /// <summary>
    /// The directories searched, in order: <paramref name="root"/> (and root/fashion-mnist) when given,
    /// else $MVQ_DATA and $MVQ_DATA/fashion-mnist when set; then <see cref="SystemDir"/>.
    /// </summary>
    public static IReadOnlyList<string> SearchDirs(string? root = null)
    {
        var dirs = new List<string>();
        var env = Environment.GetEnvironmentVariable("MVQ_DATA");
        foreach (var r in new[] { root, string.IsNullOrEmpty(root) ? env : null })
        {
            if (string.IsNullOrEmpty(r)) continue;
            dirs.Add(r);
            dirs.Add(Path.Combine(r, "fashion-mnist"));
        }
        dirs.Add(SystemDir);
        return dirs;
    }

    /// <summary>
    /// Loads a split as [N, 1, 28, 28] pixels in [0, 1] (byte / 255) with labels.
    /// </summary>
    /// <param name="split">"train" or "test".</param>
    /// <param name="root">Directory to look in first, instead of $MVQ_DATA.</param>
    /// <exception cref="MvqInputException">Unknown split, files not found (the message lists the places searched), or a corrupt file.</exception>
    public static ImageDataset Load(string split, string? root = null) => Load(split, SearchDirs(root));

    /// <summary>As <see cref="Load(string, string?)"/>, searching exactly <paramref name="dirs"/> in order.</summary>
    internal static ImageDataset Load(string split, IReadOnlyList<string> dirs)
    {
        string prefix = split switch
        {
            "train" => "train",
            "test" => "t10k",
            _ => throw new MvqInputException($"fashion-mnist:{split}", "unknown split (use train or test)"),
        };
        var searched = new List<string>();
        foreach (var dir in dirs)
        {
            var images = Find(dir, $"{prefix}-images-idx3-ubyte");
            var labels = Find(dir, $"{prefix}-labels-idx1-ubyte");
            searched.Add(dir);
            if (images is null || labels is null) continue;
            return IdxDataset.Load($"fashion-mnist:{split}", images, labels);
        }
        throw new MvqInputException($"fashion-mnist:{split}",
            $"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz] not found; searched: {string.Join(", ", searched)} " +
            "(set MVQ_DATA or install Debian's dataset-fashion-mnist)");
    }

    private static string? Find(string dir, string name)
    {
        foreach (var candidate in new[] { Path.Combine(dir, name), Path.Combine(dir, name + ".gz") })
            if (File.Exists(candidate)) return candidate;
        return null;
    }
}
