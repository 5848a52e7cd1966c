// IdxDataset.cs: turns an IDX images file (and optional IDX labels file) into an ImageDataset.
namespace MvqNative.Data;

/// <summary>Image datasets stored as IDX ubyte files, MNIST style (pixel byte / 255 gives [0, 1]).</summary>
internal static class IdxDataset
{
    /// <summary>Builds a dataset from an IDX images file ([N, H, W] or [N, C, H, W], ubyte) and an optional IDX labels file ([N]).</summary>
    /// <exception cref="MvqInputException">A file is corrupt, has an unexpected rank, or the counts disagree.</exception>
    public static ImageDataset Load(string name, string imagesPath, string? labelsPath)
    {
        var img = IdxFile.Read(imagesPath);
        int n, c, h, w;
        switch (img.Dims.Length)
        {
            case 3: (n, c, h, w) = (img.Dims[0], 1, img.Dims[1], img.Dims[2]); break;
            case 4: (n, c, h, w) = (img.Dims[0], img.Dims[1], img.Dims[2], img.Dims[3]); break;
            default:
                throw new MvqInputException(imagesPath, $"an images IDX file has 3 ([N, H, W]) or 4 ([N, C, H, W]) dimensions, this one has [{string.Join(", ", img.Dims)}]");
        }
        if (c == 0 || h == 0 || w == 0) throw new MvqInputException(imagesPath, $"empty image size [{string.Join(", ", img.Dims)}]");
        var px = new float[img.Data.Length];
        // b / 255f (not b * (1/255f)) so IDX pixels equal the same byte decoded from an image file.
        Span<float> lut = stackalloc float[256];
        for (int i = 0; i < 256; i++) lut[i] = i / 255f;
        for (int i = 0; i < px.Length; i++) px[i] = lut[img.Data[i]];

        int[]? labels = null;
        if (labelsPath is not null)
        {
            var lab = IdxFile.Read(labelsPath);
            if (lab.Dims.Length != 1)
                throw new MvqInputException(labelsPath, $"a labels IDX file has 1 dimension, this one has [{string.Join(", ", lab.Dims)}]");
            if (lab.Dims[0] != n)
                throw new MvqInputException(labelsPath, $"{lab.Dims[0]} labels for {n} images in {imagesPath}");
            labels = new int[n];
            for (int i = 0; i < n; i++) labels[i] = lab.Data[i];
        }
        return new ImageDataset(name, n, c, h, w, px, labels);
    }
}
