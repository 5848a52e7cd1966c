// ImageFolder.cs: loads every image file in a directory into an ImageDataset.
namespace MvqNative.Data;

/// <summary>A directory of PNG/JPEG/BMP/GIF files (not recursive) as one dataset, files in ordinal name order.</summary>
internal static class ImageFolder
{
    /// <summary>
    /// The image files of <paramref name="dir"/> (full paths) in the order <see cref="Load"/> reads them: image
    /// extensions only, ordinal file-name order. Every command that names outputs after inputs uses this listing.
    /// </summary>
    /// <exception cref="MvqInputException">The folder is missing, unreadable or has no images.</exception>
    public static string[] Files(string dir)
    {
        if (!Directory.Exists(dir)) throw new MvqInputException(dir, "image folder not found");
        string[] files;
        try
        {
            files = Directory.EnumerateFiles(dir)
                .Where(f => ImageFile.Extensions.Contains(Path.GetExtension(f)))
                .Select(Path.GetFullPath)
                .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
                .ToArray();
        }
        catch (IOException e) { throw new MvqInputException(dir, $"cannot list folder ({IO.InputFile.Reason(e, dir)})", e); }
        catch (UnauthorizedAccessException e) { throw new MvqInputException(dir, "permission denied", e); }
        if (files.Length == 0)
            throw new MvqInputException(dir, "no image files (.png, .jpg, .jpeg, .bmp, .gif) in folder");
        return files;
    }

    /// <summary>
    /// Loads every file with an image extension (.png .jpg .jpeg .bmp .gif, any case) in <paramref name="dir"/>,
    /// sorted by file name (ordinal), each through <see cref="ImageFile.Load"/> (center crop, resize, channel rule).
    /// The result is [N, C, H, W] with no labels. Files named in <paramref name="skipNames"/> (exact file names) are left out.
    /// </summary>
    /// <exception cref="MvqInputException">The folder is missing or has no images, or one file is bad (named in the message).</exception>
    public static ImageDataset Load(string dir, int channels, int height, int width, bool convert = false, IReadOnlySet<string>? skipNames = null)
    {
        var files = Files(dir);
        if (skipNames is { Count: > 0 })
        {
            files = files.Where(f => !skipNames.Contains(Path.GetFileName(f))).ToArray();
            if (files.Length == 0) throw new MvqInputException(dir, "no image files (.png, .jpg, .jpeg, .bmp, .gif) in folder");
        }

        int size = channels * height * width;
        long bytes = (long)files.Length * size * sizeof(float);
        if (bytes > IO.Limits.DatasetBytes)
            throw new MvqInputException(dir, $"{files.Length} images of {channels}x{height}x{width} take {IO.Limits.Size(bytes)} as floats, over the {IO.Limits.Size(IO.Limits.DatasetBytes)} dataset limit (raise it with {IO.Limits.DatasetVar})");
        var px = new float[(long)files.Length * size];
        // Files decode independently, each into its own slice; on errors the lowest-numbered bad file is reported.
        var errors = new Exception?[files.Length];
        Parallel.For(0, files.Length, (i, state) =>
        {
            try { ImageFile.LoadInto(files[i], channels, height, width, px.AsSpan(i * size, size), convert); }
            catch (Exception e) { errors[i] = e; state.Stop(); }
        });
        var first = errors.FirstOrDefault(e => e is not null);
        if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        return new ImageDataset(Path.GetFullPath(dir), files.Length, channels, height, width, px);
    }
}
